"""The pipeline's INT8 step: quantize the exported fp32 model under each plan, keep the plans
whose test accuracy stays within the allowed drop, time them against fp32 on this CPU and
publish the fastest as model.int8.onnx — or publish nothing and say why.

Two plans, because neither wins everywhere (bench/int8.py, one thread, AVX-512 VNNI): keeping
the convs too small for the int8 kernels in fp32 (`narrow_layers.MIN_INT8_MACS`) is 2-44%
faster on digits' 1×8×8 inputs (ResNet-56 ×0.5: 1.22× fp32 against 0.96× for all-int8), and
2-21% slower on 3×32×32 photos, where the fp32 stretches' QuantizeLinear/DequantizeLinear at
full resolution cost more than the small convs save (ResNet-56 ×1: 1.64× against 1.81×).
Timing both on the worker costs a few hundred runs of a small model.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pruning.data.types import Inputs
from pruning.export.latency import alternating_p50_ms
from pruning.export.narrow_layers import MIN_INT8_MACS
from pruning.export.quantize import onnx_accuracy, quantize_int8

# Timed runs of each model on the worker (batch 1, one thread): a tenth of a second to a few
# seconds for the networks this service prunes.
INT8_SPEED_RUNS = 30


@dataclass(frozen=True)
class Int8Plan:
    name: str
    min_macs: int  # convs below this many MACs per output position stay fp32; 0: none


PLANS = (Int8Plan("narrow_convs_fp32", MIN_INT8_MACS), Int8Plan("all_int8", 0))


@dataclass(frozen=True)
class _Candidate:
    plan: Int8Plan
    path: Path
    fp32_nodes: list[str]
    accuracy: float
    p50_ms: float


def quantize_for_edge(
    fp32_path: Path,
    int8_path: Path,
    calibration: np.ndarray,
    x_test: Inputs,
    y_test: torch.Tensor,
    *,
    max_drop: float,
    input_shape: tuple[int, int, int],
) -> dict[str, Any]:
    """Write the fastest INT8 model that keeps its accuracy to `int8_path` and return the
    report's `int8` entry; when every plan loses more than `max_drop`, `int8_path` is not
    written and the entry's `reason` says why."""
    with tempfile.TemporaryDirectory(prefix="edgeprune-int8-plans-") as tmp:
        outcome, chosen = _choose(
            fp32_path, Path(tmp), calibration, x_test, y_test, max_drop, input_shape
        )
        if outcome["published"]:
            shutil.move(chosen, int8_path)
    return outcome


def _choose(
    fp32_path: Path,
    tmp: Path,
    calibration: np.ndarray,
    x_test: Inputs,
    y_test: torch.Tensor,
    max_drop: float,
    input_shape: tuple[int, int, int],
) -> tuple[dict[str, Any], Path]:
    made: list[tuple[Int8Plan, Path, list[str]]] = []
    for plan in PLANS:
        if plan.min_macs == 0 and any(not kept for _, _, kept in made):
            continue  # a plan already kept nothing fp32: every node is int8 there, skip a copy
        path = tmp / f"{plan.name}.onnx"
        made.append(
            (plan, path, quantize_int8(fp32_path, path, calibration, min_macs=plan.min_macs))
        )
    fp32 = onnx_accuracy(fp32_path, x_test, y_test).accuracy
    p50 = alternating_p50_ms(
        {"fp32": fp32_path, **{plan.name: path for plan, path, _ in made}}, (1, *input_shape),
        threads=1, runs=INT8_SPEED_RUNS, warmup=3,
    )  # fmt: skip
    candidates = [
        _Candidate(plan, path, kept, onnx_accuracy(path, x_test, y_test).accuracy, p50[plan.name])
        for plan, path, kept in made
    ]
    eligible = [c for c in candidates if fp32 - c.accuracy <= max_drop]
    chosen = (
        min(eligible, key=lambda c: c.p50_ms)
        if eligible
        else max(candidates, key=lambda c: c.accuracy)
    )
    outcome: dict[str, Any] = {
        "plan": chosen.plan.name,
        "accuracy": chosen.accuracy,
        "fp32_accuracy": fp32,
        "drop": fp32 - chosen.accuracy,
        "max_drop": max_drop,
        "calibration_samples": len(calibration),
        "fp32_nodes": len(chosen.fp32_nodes),  # on feature maps too narrow for int8 to pay off
        "published": bool(eligible),
        # What INT8 bought on this worker's CPU. Not a gate: a device's CPU may differ (its
        # `edge-client bench --also-fp32` measures there), but a ratio under 1 here says int8
        # may not pay on CPUs like this one.
        "speed": {
            "batch": 1,
            "threads": 1,
            "fp32_p50_ms": p50["fp32"],
            "int8_p50_ms": chosen.p50_ms,
            "int8_over_fp32": p50["fp32"] / chosen.p50_ms,
        },
        "candidates": [
            {
                "plan": c.plan.name,
                "fp32_nodes": len(c.fp32_nodes),
                "accuracy": c.accuracy,
                "p50_ms": c.p50_ms,
            }
            for c in candidates
        ],
    }
    if not eligible:
        outcome["reason"] = (
            f"INT8 accuracy {chosen.accuracy:.4f} is {fp32 - chosen.accuracy:.4f} below fp32's "
            f"{fp32:.4f} (more than the allowed {max_drop:.4f}): published fp32 only"
        )
    return outcome, chosen.path
