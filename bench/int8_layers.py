"""Where does INT8 pay off? One conv kind at a time, fp32 against int8, by channel count.

Each case is six identical conv + BN + ReLU layers on a 16×16 map (a 3×3 conv, a 1×1 conv or a
3×3 depthwise conv, `width` channels in and out), exported with `pruning.export.onnx` and quantized
by `pruning.export.quantize` with every node int8 (`min_macs=0`) and no widening (`widen=False`:
each width is timed as it is, not padded onto the kernels that want wider maps). Six layers
rather than one so that the model's input quantize and output dequantize do not dominate. The
stem case is one 3×3 conv from 1 channel to `width` at 32×32, as the first layer of every
digits network. The fp32 and int8 models take turns run by run, one thread, batch 1 and 32.
The results set `pruning.export.narrow_layers.MIN_INT8_MACS`.

    python -m bench.int8_layers [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.common import environment, save
from bench.int8_isa import int8_isa
from pruning.export.latency import alternating_p50_ms
from pruning.export.onnx import export_onnx
from pruning.export.quantize import quantize_int8

CASES: dict[str, tuple[int, ...]] = {
    "conv3x3": (4, 8, 12, 16, 24, 32, 64),
    "pointwise": (8, 16, 24, 32, 64, 128),
    "depthwise": (16, 24, 32, 43, 64, 86),
    "stem": (16, 32),
}
LAYERS = 6


def _stack(kind: str, width: int) -> tuple[nn.Module, tuple[int, int, int]]:
    if kind == "stem":
        layers = [nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        return nn.Sequential(*layers), (1, 32, 32)
    kernel, groups = {"conv3x3": (3, 1), "pointwise": (1, 1), "depthwise": (3, width)}[kind]
    layers = []
    for _ in range(LAYERS):
        conv = nn.Conv2d(width, width, kernel, padding=kernel // 2, groups=groups, bias=False)
        layers += [conv, nn.BatchNorm2d(width), nn.ReLU()]
    return nn.Sequential(*layers), (width, 16, 16)


def _case(kind: str, width: int, tmp: Path, runs: int) -> list[dict[str, Any]]:
    torch.manual_seed(0)
    model, shape = _stack(kind, width)
    paths = {"fp32": tmp / f"{kind}_{width}.onnx", "int8": tmp / f"{kind}_{width}.int8.onnx"}
    export_onnx(model.eval(), shape, paths["fp32"], widen=False)  # each width as it is
    calibration = np.random.default_rng(0).standard_normal((128, *shape)).astype(np.float32)
    quantize_int8(paths["fp32"], paths["int8"], calibration, min_macs=0, widen=False)
    rows = []
    for batch in (1, 32):
        n = runs if batch == 1 else max(10, runs // 8)
        p50 = alternating_p50_ms(paths, (batch, *shape), 1, n, max(3, n // 10))
        row = {
            "kind": kind,
            "width": width,
            "layers": 1 if kind == "stem" else LAYERS,
            "spatial": shape[1],
            "batch": batch,
            "fp32_p50_ms": p50["fp32"],
            "int8_p50_ms": p50["int8"],
            "int8_over_fp32_speedup": p50["fp32"] / p50["int8"],
        }
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = environment()
    print(env, flush=True)
    runs = 100 if args.quick else 300
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, widths in CASES.items():
            for width in widths:
                rows += _case(kind, width, Path(tmp), runs)
    payload = {"environment": env, "isa": int8_isa(), "quick": args.quick, "results": rows}
    save("int8_layers", payload)


if __name__ == "__main__":
    main()
