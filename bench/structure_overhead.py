"""Structure-learning step time vs a plain training step of the same network.

The gate trick reads eq. (5) off the gates' gradients, so the criterion should cost almost
nothing. Steps are timed alternately (plain, gated, plain, ...) so machine drift hits both.

    python -m bench.structure_overhead [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.common import environment, save
from pruning.config import CompressConfig, Target
from pruning.cpu_kernels import guard_cpu_kernels
from pruning.models.registry import ModelSpec, build_model
from pruning.network.cost import CostModel
from pruning.network.dependency import DependencyAdapter
from pruning.network.units import unit_widths
from pruning.structure.gates import UnitGates
from pruning.structure.learner import StructureLearner


def _step(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    after: Callable[[], None] | None = None,
) -> float:
    started = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    with guard_cpu_kernels(model, x.device):
        F.cross_entropy(model(x), y).backward()
    if after is not None:
        after()
    opt.step()
    return time.perf_counter() - started


def measure(arch: str, width_mult: float, batch: int, steps: int) -> dict[str, object]:
    torch.manual_seed(0)
    spec = ModelSpec(arch=arch, in_channels=3, num_classes=10, width_mult=width_mult)
    plain = build_model(spec)
    gated = build_model(spec)
    gated.load_state_dict(plain.state_dict())
    units = gated.prunable_units()  # type: ignore[operator]
    widths = unit_widths(gated, units)
    example = torch.randn(1, 3, 32, 32)
    gated.eval()
    adapter = DependencyAdapter(gated, example, units)
    cost = CostModel.build(gated, example, adapter.couplings(), widths)
    gates = UnitGates(gated, units, widths, adapter.consumers(), example=example, batch_size=batch)
    learner = StructureLearner(gates, widths, cost, CompressConfig(target=Target("flops", 0.5)))
    plain.train()
    gated.train()
    opt_plain = torch.optim.SGD(plain.parameters(), lr=0.01, momentum=0.9)
    opt_gated = torch.optim.SGD(gated.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    for _ in range(3):  # warm-up
        _step(plain, opt_plain, x, y)
        _step(gated, opt_gated, x, y, learner.after_backward)
    plain_times, gated_times = [], []
    for _ in range(steps):
        plain_times.append(_step(plain, opt_plain, x, y))
        gated_times.append(_step(gated, opt_gated, x, y, learner.after_backward))
    p, g = statistics.median(plain_times), statistics.median(gated_times)
    return {
        "arch": arch,
        "width_mult": width_mult,
        "batch": batch,
        "steps": steps,
        "plain_step_ms_median": p * 1e3,
        "structure_step_ms_median": g * 1e3,
        "ratio": g / p,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small batch, few steps (CPU)")
    args = parser.parse_args()
    env = environment()
    print(env)
    batch, steps = (32, 15) if args.quick else (128, 50)
    rows = []
    for arch, width in [("vgg16", 0.5), ("resnet56", 1.0), ("mobilenet", 0.5)]:
        row = measure(arch, width, batch, steps)
        print(row)
        rows.append(row)
    save("structure_overhead", {"environment": env, "quick": args.quick, "results": rows})


if __name__ == "__main__":
    main()
