"""On a CUDA machine: is the engine's training as fast as plain torch AMP, and does "auto"
precision compress as well as fp32?

1. Throughput: median step time of (a) a plain torch AMP training step, (b) a structure-
   learning step (gates, the learner's per-batch saliency update) and (c) a weight-learning
   step, all through the same model, batches and autocast dtype. Goal: (b) and (c) at
   ≥ 0.8× the plain step's throughput.
2. Precision: `compress_model` on builtin:digits with precision fp32 and auto, same seed:
   both reach the FLOPs target; accuracies within 1 point.

Without CUDA it says so and exits 0 (`--device cpu` runs it on the CPU as a smoke test).
Results: bench/results/gpu_check.json. Under 5 minutes on one GPU.

    python -m bench.gpu_check [--device cuda] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from bench.common import environment, save
from pruning.config import CompressConfig, Target
from pruning.data import load_task_data
from pruning.engine import TaskTensors, compress_model
from pruning.models.registry import ModelSpec, build_model
from pruning.network.cost import CostModel
from pruning.network.dependency import DependencyAdapter
from pruning.network.metrics import count_model
from pruning.network.units import unit_widths
from pruning.precision import autocast, plan
from pruning.structure.gates import UnitGates
from pruning.structure.learner import StructureLearner


def _median_step_ms(step: Callable[[], None], device: torch.device, steps: int) -> float:
    for _ in range(5):
        step()
    times = []
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def throughput(device: torch.device, batch: int, steps: int, width: float) -> dict[str, Any]:
    spec = ModelSpec("vgg16", in_channels=3, num_classes=10, width_mult=width)
    chosen = plan("auto", device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        x = x.contiguous(memory_format=torch.channels_last)

    def trainer(model: torch.nn.Module, after: Callable[[], None] | None) -> Callable[[], None]:
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with autocast(chosen, device):
                loss = F.cross_entropy(model(x).float(), y)
            loss.backward()
            if after is not None:
                after()
            optimizer.step()

        return step

    def fresh() -> torch.nn.Module:
        torch.manual_seed(0)
        model = build_model(spec).to(device).train()
        if device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        return model

    plain = _median_step_ms(trainer(fresh(), None), device, steps)
    weights = _median_step_ms(trainer(fresh(), None), device, steps)
    gated = fresh()
    units = gated.prunable_units()  # type: ignore[operator]
    widths = unit_widths(gated, units)
    adapter = DependencyAdapter(gated, x[:1], units)
    gates = UnitGates(gated, units, widths, adapter.consumers(), example=x[:1], batch_size=batch)
    cost = CostModel.build(gated, x[:1], adapter.couplings(), widths)
    learner = StructureLearner(
        gates, widths, cost, CompressConfig(target=Target("flops", 0.5), device=str(device))
    )
    learner.finish_calibration()
    structure = _median_step_ms(trainer(gated, learner.after_backward), device, steps)
    return {
        "arch": "vgg16",
        "width_mult": width,
        "batch": batch,
        "precision": chosen.name,
        "plain_amp_step_ms": plain,
        "weight_learning_step_ms": weights,
        "structure_learning_step_ms": structure,
        "weight_learning_vs_plain": plain / weights,
        "structure_learning_vs_plain": plain / structure,
    }


def precision_parity(
    device: torch.device, epochs: tuple[int, int], width: float
) -> list[dict[str, Any]]:
    data = load_task_data("builtin:digits", seed=0)
    task = TaskTensors(data.x_train, data.y_train, data.x_test, data.y_test)
    spec = ModelSpec("vgg11", in_channels=1, num_classes=10, width_mult=width)
    rows = []
    for precision in ("fp32", "auto"):
        torch.manual_seed(0)
        model = build_model(spec)
        full = count_model(model, data.input_shape).flops
        config = CompressConfig(
            target=Target("flops", 0.5), structure_epochs=epochs[0], finetune_epochs=epochs[1],
            lr=0.1, structure_lr=0.1, augment=False, device=str(device),
            precision=precision,  # type: ignore[arg-type]
        )  # fmt: skip
        started = time.perf_counter()
        result = compress_model(model, spec, task, config)
        rows.append(
            {
                "precision": precision,
                "resolved": result.runtime["precision"],
                "device": result.runtime["device"],
                "accuracy": result.pruned["accuracy"],
                "flops_reduction": 1
                - count_model(result.model.cpu(), data.input_shape).flops / full,
                "seconds": time.perf_counter() - started,
            }
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a CPU smoke test)")
    parser.add_argument("--name", default="gpu_check", help="results file name")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here: nothing to check (use --device cpu for a smoke run)")
        return
    env = environment()
    print(env, flush=True)
    # The smoke run's sizes only exercise the code paths: a narrow VGG-11 compresses in a
    # few seconds on 2 cores, where the real check's width 0.5 takes ten.
    batch, steps, width, epochs, parity_width = (
        (8, 3, 0.125, (1, 1), 0.125) if args.smoke else (256, 50, 1.0, (3, 3), 0.5)
    )
    speed = throughput(device, batch, steps, width)
    print(speed, flush=True)
    parity = precision_parity(device, epochs, parity_width)
    fp32, auto = parity
    verdict = {
        "throughput_goal_met": min(
            speed["weight_learning_vs_plain"], speed["structure_learning_vs_plain"]
        )
        >= 0.8,
        "both_reach_target": all(abs(r["flops_reduction"] - 0.5) <= 0.01 for r in parity),
        "accuracy_gap_points": 100 * abs(fp32["accuracy"] - auto["accuracy"]),
    }
    print(verdict, flush=True)
    save(args.name, {"environment": env, "throughput": speed, "precision": parity, **verdict})


if __name__ == "__main__":
    main()
