"""CPU benchmark of an ONNX model, and of its unpruned baseline in the same run.

Method, chosen so numbers from different devices and runs can be compared:

- thread counts are fixed through SessionOptions (intra-op = `threads`, inter-op = 1);
- `warmup` untimed runs of each model first (allocations, caches, lazy kernel choice);
- `runs` timed runs with `perf_counter_ns`. With a baseline (and the fp32 pruned model,
  when an int8 model is timed with `fp32`) the models alternate run by run, in ABBA order
  (ABC CBA with three), so thermal throttling, frequency scaling or a noisy neighbour hits
  all equally instead of whichever ran last;
- latency percentiles are per inference call (one batch), in milliseconds;
- throughput is samples per second: `batch * runs / total timed seconds`;
- speedup is `baseline p50 / model p50`: the median resists the odd preempted run;
  `speedup_vs_fp32` is `fp32 p50 / model p50`, what quantization bought on this CPU;
- peak RSS is the process's high-water mark (getrusage): it covers both sessions and the
  interpreter, so it is an upper bound for the model alone.

The input is seeded random data of the model's input shape (or the manifest's, for models
with dynamic dims). Optional accuracy runs a labelled `.npz` (`x`, `y` integer labels)
through each model. `x` of an integer type (8-bit pixels, a sensor's counts) holds raw
values: they get the preprocessing the installed manifest (or the model's metadata) names,
and may be laid out NCHW, NHWC or NHW, like `edge-client predict`'s input. Float `x` is
taken as already normalised in the model's layout, unless `raw` says it holds raw values
too (e.g. a sensor's float readings).
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .errors import ConfigError, DataError
from .predict import Preprocessing
from .session import InputSpec, input_spec, open_session


@dataclass(frozen=True)
class BenchConfig:
    threads: int = 1
    runs: int = 50
    warmup: int = 5
    batch: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("threads", "runs", "batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ConfigError(f"warmup must be >= 0, got {self.warmup}")


@dataclass(frozen=True)
class LatencyStats:
    p50: float
    p95: float
    p99: float
    mean: float
    min: float
    max: float

    @classmethod
    def from_ns(cls, samples_ns: Sequence[int]) -> LatencyStats:
        ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
        # Linear interpolation keeps the percentiles ordered (p50 <= p95 <= p99).
        p50, p95, p99 = np.percentile(ms, [50, 95, 99])
        return cls(
            p50=float(p50),
            p95=float(p95),
            p99=float(p99),
            mean=float(ms.mean()),
            min=float(ms.min()),
            max=float(ms.max()),
        )


@dataclass(frozen=True)
class BenchResult:
    model: str
    input_shape: list[int]
    latency_ms: LatencyStats
    throughput: float  # samples per second
    baseline: str | None
    baseline_latency_ms: LatencyStats | None
    baseline_throughput: float | None
    speedup: float | None
    accuracy: float | None
    baseline_accuracy: float | None
    peak_rss_mb: float
    threads: int
    runs: int
    warmup: int
    batch: int
    onnxruntime_version: str
    cpu: dict[str, Any]
    # The fp32 pruned model timed beside an int8 `model` (None unless asked).
    fp32: str | None = None
    fp32_latency_ms: LatencyStats | None = None
    fp32_throughput: float | None = None
    fp32_accuracy: float | None = None
    speedup_vs_fp32: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def peak_rss_mb() -> float:
    """This process's own peak resident memory. On Linux, /proc's VmHWM: ru_maxrss survives
    exec, so a client started by a big parent (the demo, a Python supervisor) would report
    the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def cpu_info() -> dict[str, Any]:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "model": model or "unknown",
        "machine": platform.machine(),
        "system": platform.system(),
        "logical_cores": os.cpu_count(),
    }


class _Subject:
    """One model under test: its session, its input, and its timings."""

    def __init__(self, path: Path, config: BenchConfig, declared: Sequence[int] | None) -> None:
        self.path = path
        self.session = open_session(path, threads=config.threads)
        self.spec: InputSpec = input_spec(self.session, declared, batch=config.batch)
        rng = np.random.default_rng(config.seed)
        if np.issubdtype(self.spec.dtype, np.floating):
            data = rng.standard_normal(self.spec.shape).astype(self.spec.dtype)
        else:
            data = np.zeros(self.spec.shape, dtype=self.spec.dtype)
        self.feed = {self.spec.name: data}
        self.samples_ns: list[int] = []

    def run(self, timed: bool) -> None:
        start = time.perf_counter_ns()
        self.session.run(None, self.feed)
        if timed:
            self.samples_ns.append(time.perf_counter_ns() - start)

    def throughput(self, batch: int) -> float:
        return batch * len(self.samples_ns) / (sum(self.samples_ns) / 1e9)

    def accuracy(self, x: np.ndarray, y: np.ndarray, batch: int) -> float:
        if tuple(x.shape[1:]) != self.spec.shape[1:]:
            raise DataError(
                f"data x has samples of shape {list(x.shape[1:])}, "
                f"{self.path.name} takes {list(self.spec.shape[1:])}"
            )
        correct = 0
        for start in range(0, len(x), batch):
            chunk = x[start : start + batch].astype(self.spec.dtype, copy=False)
            logits = np.asarray(self.session.run(None, {self.spec.name: chunk})[0])
            correct += int((logits.argmax(axis=-1) == y[start : start + batch]).sum())
        return correct / len(x)


def load_labelled(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """`x` (as stored) and `y` (integer labels) from an .npz; never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as data:
            x, y = data["x"], data["y"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"cannot read x and y from {path}: {exc}") from exc
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise DataError(f"{path.name}: x is {x.dtype}, expected numbers")
    if not np.issubdtype(y.dtype, np.integer) or y.ndim != 1 or len(y) != len(x) or not len(x):
        raise DataError(f"{path.name}: y must be {len(x)} integer labels, got {y.dtype} {y.shape}")
    return x, y


def model_input(
    x: np.ndarray,
    raw: bool | None,
    preprocessing: Callable[[], Preprocessing],
    name: str,
) -> np.ndarray:
    """`x` as the model takes it. `raw` None: integer x is raw, float x is normalised."""
    if raw is None:
        raw = bool(np.issubdtype(x.dtype, np.integer))
    if not raw:
        return x.astype(np.float32, copy=False)
    try:
        prep = preprocessing()
    except ConfigError as exc:
        raise DataError(
            f"{name}: x ({x.dtype}) holds raw values, but {exc}; or give float32 x, already "
            "normalised in the model's layout"
        ) from None
    try:
        return prep.apply(x)
    except ConfigError as exc:
        raise DataError(f"{name}: {exc}") from None


def run_benchmark(
    model: Path,
    *,
    baseline: Path | None = None,
    fp32: Path | None = None,
    config: BenchConfig | None = None,
    input_shape: Sequence[int] | None = None,
    data: Path | None = None,
    raw: bool | None = None,
    preprocessing: Preprocessing | None = None,
    check_stop: Callable[[], None] | None = None,
) -> BenchResult:
    """Benchmark `model` (and `baseline`, alternating); `check_stop` is called before every
    run and may raise (the run loop passes its stop signal's check, so SIGTERM does not
    wait for a long benchmark to finish). `data` measures accuracy; raw values in it get
    `preprocessing` (default: the model's metadata), see the module docstring."""
    config = config or BenchConfig()
    check = check_stop or (lambda: None)
    subject = _Subject(model, config, input_shape)
    base = _Subject(baseline, config, input_shape) if baseline is not None else None
    full = _Subject(fp32, config, input_shape) if fp32 is not None else None
    subjects = [s for s in (subject, base, full) if s is not None]

    for _ in range(config.warmup):
        check()
        for s in subjects:
            s.run(timed=False)
    for i in range(config.runs):
        check()
        # ABBA: alternate which model goes first, so neither always runs on a warmer cache.
        for s in subjects if i % 2 == 0 else reversed(subjects):
            s.run(timed=True)

    stats = LatencyStats.from_ns(subject.samples_ns)
    base_stats = LatencyStats.from_ns(base.samples_ns) if base is not None else None
    full_stats = LatencyStats.from_ns(full.samples_ns) if full is not None else None
    accuracy = baseline_accuracy = fp32_accuracy = None
    if data is not None:
        x, y = load_labelled(data)
        x = model_input(
            x, raw, lambda: preprocessing or Preprocessing.from_model(subject.session), data.name
        )
        accuracy = subject.accuracy(x, y, config.batch)
        if base is not None:
            baseline_accuracy = base.accuracy(x, y, config.batch)
        if full is not None:
            fp32_accuracy = full.accuracy(x, y, config.batch)
    return BenchResult(
        model=str(model),
        input_shape=list(subject.spec.shape),
        latency_ms=stats,
        throughput=subject.throughput(config.batch),
        baseline=str(baseline) if baseline is not None else None,
        baseline_latency_ms=base_stats,
        baseline_throughput=base.throughput(config.batch) if base is not None else None,
        speedup=base_stats.p50 / stats.p50 if base_stats is not None else None,
        accuracy=accuracy,
        baseline_accuracy=baseline_accuracy,
        peak_rss_mb=peak_rss_mb(),
        threads=config.threads,
        runs=config.runs,
        warmup=config.warmup,
        batch=config.batch,
        onnxruntime_version=ort.__version__,
        cpu=cpu_info(),
        fp32=str(fp32) if fp32 is not None else None,
        fp32_latency_ms=full_stats,
        fp32_throughput=full.throughput(config.batch) if full is not None else None,
        fp32_accuracy=fp32_accuracy,
        speedup_vs_fp32=full_stats.p50 / stats.p50 if full_stats is not None else None,
    )
