"""A training epoch as `edgeprune compress` runs it, against a plain torch loop.

Same network, same batches (the engine's batch iterator with a seeded generator, so both
loops see identical data), same SGD. The engine's epoch adds what a real run has: the CPU
kernel guard, the precision plan, the per-step progress callback, the cancel check, the
divergence check; the structure-learning epoch also has the gates and the saliency update
after every backward. Epochs are timed in turn (plain, weight learning, structure learning,
plain, ...) so drift of a shared machine hits all three; medians are reported.

    python -m bench.epoch_overhead [--epochs 5] [--archs vgg16:0.25 mobilenet:0.25]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from bench.common import environment, save
from pruning.config import CompressConfig, ProgressEvent, Target
from pruning.data import load_task_data
from pruning.data.batches import iterate_batches
from pruning.models.registry import ModelSpec, build_model
from pruning.network.cost import CostModel
from pruning.network.dependency import DependencyAdapter
from pruning.network.units import unit_widths
from pruning.structure.gates import UnitGates
from pruning.structure.learner import StructureLearner
from pruning.training import train_one_epoch

BATCH = 64


def _plain_epoch(model: torch.nn.Module, opt: torch.optim.Optimizer, data: Any, seed: int) -> None:
    model.train()
    generator = torch.Generator().manual_seed(seed)
    for xb, yb in iterate_batches(
        data.x_train, data.y_train, BATCH, shuffle=True, augment=True, generator=generator
    ):
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xb), yb).backward()
        opt.step()


def _engine_epoch(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    data: Any,
    seed: int,
    after_backward: Callable[[], None] | None,
) -> None:
    events: list[ProgressEvent] = []

    def on_step(step: int, steps: int, loss: float, accuracy: float) -> None:
        # What the engine's progress hook does per step: build an event for the driver.
        events.append(
            ProgressEvent(phase="weight_learning", progress=step / steps, step=step, steps=steps)
        )

    train_one_epoch(
        model,
        data.x_train,
        data.y_train,
        optimizer=opt,
        batch_size=BATCH,
        generator=torch.Generator().manual_seed(seed),
        augment=True,
        device=torch.device("cpu"),
        after_backward=after_backward,
        on_step=on_step,
        should_cancel=lambda: False,
        precision="auto",
    )


def _timed(run: Callable[[], None]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def measure(arch: str, width: float, epochs: int, data: Any) -> dict[str, Any]:
    torch.manual_seed(0)
    spec = ModelSpec(arch=arch, in_channels=3, num_classes=data.num_classes, width_mult=width)
    plain, engine, gated = build_model(spec), build_model(spec), build_model(spec)
    engine.load_state_dict(plain.state_dict())
    gated.load_state_dict(plain.state_dict())
    units = gated.prunable_units()  # type: ignore[operator]
    widths = unit_widths(gated, units)
    example = data.x_test[:1]
    gated.eval()
    adapter = DependencyAdapter(gated, example, units)
    cost = CostModel.build(gated, example, adapter.couplings(), widths)
    gates = UnitGates(gated, units, widths, adapter.consumers(), example=example, batch_size=BATCH)
    learner = StructureLearner(gates, widths, cost, CompressConfig(target=Target("flops", 0.5)))
    learner.finish_calibration()  # the masks of a -50% FLOPs start
    optimisers = [
        torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for m in (plain, engine, gated)
    ]
    runs = [
        lambda seed: _plain_epoch(plain, optimisers[0], data, seed),
        lambda seed: _engine_epoch(engine, optimisers[1], data, seed, None),
        lambda seed: _engine_epoch(gated, optimisers[2], data, seed, learner.after_backward),
    ]
    for run in runs:  # warm-up epoch each
        run(0)
    times: list[list[float]] = [[], [], []]
    for epoch in range(1, epochs + 1):
        for index, run in enumerate(runs):
            times[index].append(_timed(lambda run=run, epoch=epoch: run(epoch)))
    plain_s, weight_s, structure_s = (statistics.median(t) for t in times)
    return {
        "arch": arch,
        "width_mult": width,
        "batch": BATCH,
        "train_samples": len(data.y_train),
        "epochs_timed": epochs,
        "plain_epoch_s": round(plain_s, 3),
        "weight_learning_epoch_s": round(weight_s, 3),
        "structure_learning_epoch_s": round(structure_s, 3),
        "weight_learning_ratio": round(weight_s / plain_s, 3),
        "structure_learning_ratio": round(structure_s / plain_s, 3),
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--archs", nargs="+", default=["vgg16:0.25", "resnet20:0.5", "mobilenet:0.25"]
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = load_task_data("builtin:photos")
    env = environment()
    rows = []
    for item in args.archs:
        arch, width = item.split(":")
        row = measure(arch, float(width), args.epochs, data)
        print(row, flush=True)
        rows.append(row)
    save("epoch_overhead", {"environment": env, "data": "builtin:photos", "results": rows})


if __name__ == "__main__":
    main()
