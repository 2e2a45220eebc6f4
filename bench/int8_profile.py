"""Where a pruned network's time goes in onnxruntime, fp32 against INT8: per operator type
and per node, from onnxruntime's own profiler, at batch 1 and 32 with one thread.

It answers why INT8 stops short of a speedup the FLOPs would suggest: how much time the
nodes kept fp32 (`pruning.export.narrow_layers`) and the layout changes around them take.

    python -m bench.int8_profile [--arch mobilenet --width 1 --reduction 0.7 --channel-multiple 8]
"""

from __future__ import annotations

import argparse
import collections
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from bench.common import environment, save
from bench.int8_isa import int8_isa
from bench.train import Recipe, train
from pruning.config import CompressConfig, Target
from pruning.data import load_task_data
from pruning.engine import TaskTensors, compress_model
from pruning.export.onnx import export_onnx
from pruning.export.quantize import calibration_sample, quantize_int8
from pruning.models.registry import ModelSpec, build_model

WARMUP = 20


def profile(path: Path, shape: tuple[int, ...], runs: int) -> dict[str, Any]:
    """Mean microseconds per run: the whole run, each operator type and each node."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = str(path.with_suffix(""))
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    for _ in range(WARMUP + runs):
        session.run(None, {"input": x})
    events = json.loads(Path(session.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    by_node: collections.Counter[str] = collections.Counter()
    total = 0.0
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
            by_node[event["name"].removesuffix("_kernel_time")] += event["dur"]
        elif event.get("cat") == "Session" and event["name"] == "model_run":
            total += event["dur"]
    n = WARMUP + runs
    return {
        "run_us": total / n,
        "by_op_us": {k: v / n for k, v in by_op.most_common()},
        "top_nodes_us": {k: v / n for k, v in by_node.most_common(12)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="mobilenet")
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--reduction", type=float, default=0.7)
    parser.add_argument("--channel-multiple", type=int, default=8)
    parser.add_argument("--name", default="int8_profile")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_task_data("builtin:digits", seed=0)
    task = TaskTensors(data.x_train, data.y_train, data.x_test, data.y_test)
    spec = ModelSpec(arch=args.arch, in_channels=1, num_classes=10, width_mult=args.width)
    torch.manual_seed(0)
    model = build_model(spec)
    train(model, task, 2, Recipe(lr=0.1, augment=False, schedule="onecycle"), 0)
    config = CompressConfig(
        target=Target("flops", args.reduction), structure_epochs=1, finetune_epochs=1,
        calibration_batches=4, augment=False, device="cpu",
        channel_multiple=args.channel_multiple,
    )  # fmt: skip
    result = compress_model(model, spec, task, config)
    rows: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fp32, int8 = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        export_onnx(result.model, data.input_shape, fp32)
        kept = quantize_int8(fp32, int8, calibration_sample(task.x_train, 256, seed=0))
        for batch, runs in ((1, 300), (32, 40)):
            for name, path in (("fp32", fp32), ("int8", int8)):
                rows[f"{name}_batch{batch}"] = profile(path, (batch, *data.input_shape), runs)
                print(name, batch, round(rows[f"{name}_batch{batch}"]["run_us"], 1), flush=True)
    save(
        args.name,
        {
            "environment": environment(),
            "isa": int8_isa(),
            "settings": vars(args),
            "widths": list(result.spec.widths or ()),
            "fp32_nodes": kept,
            "profiles": rows,
        },
    )


if __name__ == "__main__":
    main()
