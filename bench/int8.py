"""What INT8 adds on top of pruning: latency and accuracy of baseline fp32, pruned fp32 and
pruned INT8 with onnxruntime on the CPU, in one run.

For each architecture: pretrain on the task (`--data`, builtin:digits unless said), compress to
50% and 70% FLOPs (structure and weight learning), export, quantize with
`pruning.export.quantize` (static, QDQ, per-channel, 256 calibration samples; convs too small
for the int8 kernels stay fp32), and, for comparison, quantize every node (`min_macs=0`, what
`pruning.export.quantize` did before); then time the four models alternately, run by run, at
batch 1 and 32 with one thread, and measure each one's test accuracy with onnxruntime.

    python -m bench.int8 [--quick] [--archs vgg16:0.5,resnet56:0.5,mobilenet:0.5]
                         [--channel-multiple 8] [--data builtin:photos] [--name int8_multiple8]

An arch may name its own pretraining epochs, `resnet56:1:15`: three epochs (`--quick`) leave
ResNet-56 at 27-47% on digits, too far from trained for its accuracy columns to mean much.

`--data` takes any source the engine reads (`pruning.data.load_task_data`): digits are 1×8×8,
so every layer is small and fixed per-op costs weigh more than on an edge task's images;
`builtin:photos` (3×32×32) is nearer what devices see.

`--channel-multiple` keeps every pruned width a multiple of N (`CompressConfig.channel_multiple`):
int8 kernels fill their SIMD blocks only with such widths (bench/int8_layers.py).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from bench.common import environment, save
from bench.int8_isa import int8_isa
from bench.train import Recipe, train
from pruning.config import CompressConfig, Target
from pruning.data import load_task_data
from pruning.engine import TaskTensors, compress_model
from pruning.export.latency import alternating_p50_ms
from pruning.export.onnx import export_onnx
from pruning.export.quantize import calibration_sample, onnx_accuracy, quantize_int8
from pruning.models.registry import ModelSpec, build_model
from pruning.network.metrics import count_model

MODELS = ("baseline", "pruned_fp32", "pruned_int8", "pruned_int8_all")


def _measure(
    arch: str,
    width: float,
    pretrain_epochs: int,
    task: TaskTensors,
    shape: tuple[int, int, int],
    num_classes: int,
    tmp: Path,
    args: Any,
) -> list[dict[str, Any]]:
    spec = ModelSpec(arch=arch, in_channels=shape[0], num_classes=num_classes, width_mult=width)
    torch.manual_seed(0)
    model = build_model(spec)
    train(model, task, pretrain_epochs, Recipe(lr=0.1, augment=False, schedule="onecycle"), 0)
    paths = {"baseline": tmp / f"{arch}_baseline.onnx"}
    export_onnx(model, shape, paths["baseline"])
    base_cost = count_model(model, shape)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rows = []
    for reduction in (0.5, 0.7):
        start = build_model(spec)
        start.load_state_dict(state)
        config = CompressConfig(
            target=Target("flops", reduction), structure_epochs=args.structure_epochs,
            finetune_epochs=args.finetune_epochs, calibration_batches=8, augment=False,
            device="cpu", channel_multiple=args.channel_multiple,
        )  # fmt: skip
        result = compress_model(start, spec, task, config)
        paths["pruned_fp32"] = tmp / f"{arch}_{reduction}_fp32.onnx"
        paths["pruned_int8"] = tmp / f"{arch}_{reduction}_int8.onnx"
        paths["pruned_int8_all"] = tmp / f"{arch}_{reduction}_int8_all.onnx"
        export_onnx(result.model, shape, paths["pruned_fp32"])
        sample = calibration_sample(task.x_train, 256, seed=0)
        kept_fp32 = quantize_int8(paths["pruned_fp32"], paths["pruned_int8"], sample)
        quantize_int8(paths["pruned_fp32"], paths["pruned_int8_all"], sample, min_macs=0)
        accuracy = {
            name: onnx_accuracy(path, task.x_test, task.y_test).accuracy
            for name, path in paths.items()
        }
        cost = count_model(result.model, shape)
        for batch in (1, 32):
            runs = args.runs if batch == 1 else max(10, args.runs // 8)
            p50 = alternating_p50_ms(paths, (batch, *shape), 1, runs, max(3, runs // 10))
            row = {
                "arch": arch,
                "width_mult": width,
                "channel_multiple": args.channel_multiple,
                "pretrain_epochs": pretrain_epochs,
                "target_flops_reduction": reduction,
                "achieved_flops_reduction": 1 - cost.flops / base_cost.flops,
                "batch": batch,
                "threads": 1,
                **{f"{name}_p50_ms": p50[name] for name in MODELS},
                **{f"{name}_accuracy": accuracy[name] for name in MODELS},
                "int8_fp32_nodes": len(kept_fp32),
                "int8_over_fp32_speedup": p50["pruned_fp32"] / p50["pruned_int8"],
                "int8_all_over_fp32_speedup": p50["pruned_fp32"] / p50["pruned_int8_all"],
                "int8_over_baseline_speedup": p50["baseline"] / p50["pruned_int8"],
                "int8_accuracy_drop": accuracy["pruned_fp32"] - accuracy["pruned_int8"],
            }
            print(
                {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True
            )
            rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and timed runs")
    parser.add_argument(
        "--archs",
        default="vgg16:0.5,resnet56:0.5,mobilenet:0.5",
        help="arch:width[:pretrain epochs], comma-separated",
    )
    parser.add_argument(
        "--channel-multiple", type=int, default=1, help="pruned widths a multiple of N"
    )
    parser.add_argument(
        "--data", default="builtin:digits", help="task data source (builtin:photos: 3x32x32)"
    )
    parser.add_argument("--name", default="int8", help="results file name")
    args = parser.parse_args()
    args.pretrain_epochs, args.structure_epochs, args.finetune_epochs = (
        (3, 1, 2) if args.quick else (10, 3, 5)
    )
    args.runs = 100 if args.quick else 300
    torch.set_num_threads(1)
    env = environment()
    print(env, flush=True)
    data = load_task_data(args.data, seed=0)
    task = TaskTensors(data.x_train, data.y_train, data.x_test, data.y_test)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for item in args.archs.split(","):
            arch, width, *epochs = item.split(":")
            pretrain = int(epochs[0]) if epochs else args.pretrain_epochs
            rows += _measure(
                arch, float(width), pretrain, task, data.input_shape, len(data.classes), Path(tmp),
                args,
            )  # fmt: skip
    payload = {
        "environment": env,
        "isa": int8_isa(),
        "quick": args.quick,
        "data": args.data,
        "input_shape": list(data.input_shape),
        "notes": [
            "The int8 convs are zero-padded to widths onnxruntime's direct int8 kernels take "
            "(`narrow_layers.widen_for_int8`: at least 16 output channels, multiples of 8, "
            "multiples of 16 through a depthwise conv)."
        ],
        "results": rows,
    }
    # The CPU is shared: the load at the end says whether it changed during the run.
    payload["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    save(args.name, payload)


if __name__ == "__main__":
    main()
