"""Does the FLOPs cut become real time on a CPU? Pruned vs baseline ONNX latency.

Learns a structure for VGG-16, ResNet-56 and MobileNet at 50% and 70% FLOPs reduction
(structure learning on the bundled digits, no weight learning: latency depends only on the
structure), exports both networks and times them with onnxruntime on the CPU, alternating
runs so drift hits both.

    python -m bench.onnx_speedup [--quick] [--archs vgg16,resnet56,mobilenet] [--multiples 1,8]

Each structure is learned twice: with per-channel widths (the paper) and with widths kept
multiples of 8 (`channel_multiple`), which fill the CPU's SIMD blocks.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from bench.common import environment, save
from pruning.config import CompressConfig, Target
from pruning.data import load_task_data
from pruning.engine import TaskTensors, compress_model
from pruning.export.latency import alternating_p50_ms
from pruning.export.onnx import export_onnx
from pruning.models.registry import ModelSpec, build_model
from pruning.network.metrics import count_model


def alternating_latency(
    baseline: Path, pruned: Path, shape: tuple[int, ...], threads: int, runs: int, warmup: int
) -> dict[str, float]:
    p50 = alternating_p50_ms({"baseline": baseline, "pruned": pruned}, shape, threads, runs, warmup)
    base, pruned_ms = p50["baseline"], p50["pruned"]
    return {"baseline_p50_ms": base, "pruned_p50_ms": pruned_ms, "speedup": base / pruned_ms}


@torch.no_grad()
def settle_batchnorm(model: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    """Give BN layers the statistics of real inputs (no weight update).

    A freshly initialised deep ResNet in eval mode normalises with mean 0 / var 1, so its
    activations grow block after block and its logits get large enough for the export's
    absolute 1e-4 parity check to fail on float rounding alone. Latency does not depend on
    the values, so this only makes the export check meaningful.
    """
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the batches below
    model.train()
    for start in range(0, len(x), 64):
        model(x[start : start + 64])
    return model.eval()


def _measure_arch(
    arch: str,
    task: TaskTensors,
    shape: tuple[int, int, int],
    tmp: Path,
    runs: int,
    warmup: int,
    multiples: list[int],
) -> list[dict[str, object]]:
    spec = ModelSpec(arch=arch, in_channels=shape[0], num_classes=10)
    baseline_path = tmp / f"{arch}_baseline.onnx"
    baseline_model = settle_batchnorm(build_model(spec), task.x_train)
    export_onnx(baseline_model, shape, baseline_path)
    base_cost = count_model(baseline_model, shape)
    rows: list[dict[str, object]] = []
    for reduction, multiple in [(r, m) for r in (0.5, 0.7) for m in multiples]:
        config = CompressConfig(
            target=Target("flops", reduction),
            structure_epochs=1,
            finetune_epochs=0,
            batch_size=64,
            calibration_batches=4,
            channel_multiple=multiple,
        )
        result = compress_model(build_model(spec), spec, task, config)
        pruned_path = tmp / f"{arch}_pruned_{reduction}_{multiple}.onnx"
        export_onnx(settle_batchnorm(result.model, task.x_train), shape, pruned_path)
        cost = count_model(result.model, shape)
        flops_ratio = base_cost.flops / cost.flops
        for batch in (1, 32):
            for threads in (1, 2):
                timing = alternating_latency(
                    baseline_path,
                    pruned_path,
                    (batch, *shape),
                    threads,
                    runs if batch == 1 else max(10, runs // 6),
                    warmup,
                )
                row: dict[str, object] = {
                    "arch": arch,
                    "target_flops_reduction": reduction,
                    "channel_multiple": multiple,
                    "achieved_flops_reduction": 1 - cost.flops / base_cost.flops,
                    "flops_ratio": flops_ratio,
                    "batch": batch,
                    "threads": threads,
                    **timing,
                    "speedup_over_flops_ratio": timing["speedup"] / flops_ratio,
                }
                print(row, flush=True)
                rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--archs", default="vgg16,resnet56,mobilenet", help="comma-separated, full width"
    )
    parser.add_argument(
        "--multiples",
        default="1,8",
        help="channel_multiple values to compare (1 = the paper's per-channel widths)",
    )
    args = parser.parse_args()
    multiples = [int(m) for m in args.multiples.split(",")]
    env = environment()
    print(env)
    data = load_task_data("builtin:digits", seed=0)
    n = 256 if args.quick else data.x_train.shape[0]
    task = TaskTensors(data.x_train[:n], data.y_train[:n], data.x_test[:64], data.y_test[:64])
    shape = (1, 32, 32)
    runs, warmup = (60, 10) if args.quick else (300, 30)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs.split(","):
            rows += _measure_arch(arch.strip(), task, shape, Path(tmp), runs, warmup, multiples)
    save("onnx_speedup", {"environment": env, "quick": args.quick, "results": rows})


if __name__ == "__main__":
    main()
