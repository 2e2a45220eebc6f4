"""Latency of ONNX models on this machine's CPU with onnxruntime, the models taking turns run
by run so that drift on a shared machine hits all of them alike. Used by the pipeline to say
what INT8 bought on the worker, and by bench/ for every latency ratio."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def cpu_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def alternating_p50_ms(
    paths: dict[str, Path], shape: tuple[int, ...], threads: int, runs: int, warmup: int
) -> dict[str, float]:
    """Median latency (ms) of each model on a random input of `shape`, after `warmup` untimed
    runs each; the models take turns run by run."""
    sessions = {name: cpu_session(path, threads) for name, path in paths.items()}
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(warmup):
        for session in sessions.values():
            session.run(None, {"input": x})
    for _ in range(runs):
        for name, session in sessions.items():
            started = time.perf_counter()
            session.run(None, {"input": x})
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) * 1e3 for name, t in times.items()}
