"""What the CPU kernel guard costs: training-step time of zoo networks, three ways, one run.

- `plain`:   today's PyTorch defaults (oneDNN convolutions; the faulty path included);
- `guarded`: `pruning.cpu_kernels.guard_cpu_kernels` (strided 1×1 convs subsampled first);
- `no_onednn`: `torch.backends.mkldnn.enabled = False` (PyTorch's native CPU convolutions),
  the blunt alternative.

Each network runs forward + backward + SGD step on one fixed batch; the variants alternate
step by step so that machine noise hits all three alike; medians are reported, with the
ratio to `plain`. `--isa AVX2` re-runs the measurement in a child process with oneDNN capped
at AVX2 (what an AVX2-only CPU executes); there the input has 3 channels in NCHW so that
`plain` does not reach the faulty kernel and can be timed at all.

    python -m bench.cpu_kernel_guard            # native ISA and AVX2, writes results
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.common import environment, save
from pruning.cpu_kernels import guard_cpu_kernels, strided_pointwise_convs
from pruning.models.registry import ModelSpec, build_model

# (arch, width, batch, input channels): the zoo's strided 1×1 convs live in the ResNets
# (option-B shortcuts, bottleneck downsampling); VGG and MobileNet show the guard is free
# where there is nothing to guard, and what disabling oneDNN would cost them.
CASES = [
    ("resnet20", 0.5, 64),
    ("resnet56", 0.5, 64),
    ("resnet50", 0.25, 8),
    ("vgg11", 0.5, 64),
    ("mobilenet", 0.5, 64),
    ("mobilenet_v2", 0.5, 64),
]
VARIANTS = ("plain", "guarded", "no_onednn")


def _make_step(
    variant: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> Callable[[], float]:
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    device = torch.device("cpu")

    def step() -> float:
        started = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        if variant == "guarded":
            with guard_cpu_kernels(model, device):
                F.cross_entropy(model(x), y).backward()
        elif variant == "no_onednn":
            with torch.backends.mkldnn.flags(enabled=False):
                F.cross_entropy(model(x), y).backward()
        else:
            F.cross_entropy(model(x), y).backward()
        opt.step()
        return time.perf_counter() - started

    return step


def measure(arch: str, width: float, batch: int, channels: int, steps: int) -> dict[str, object]:
    torch.manual_seed(0)
    spec = ModelSpec(arch=arch, in_channels=channels, num_classes=10, width_mult=width)
    size = 64 if arch == "resnet50" else 32
    x = torch.randn(batch, channels, size, size)
    y = torch.randint(0, 10, (batch,))
    steps_by_variant = {}
    for variant in VARIANTS:
        model = build_model(spec)
        model.train()
        steps_by_variant[variant] = _make_step(variant, model, x, y)
    for _ in range(3):  # warm-up: oneDNN builds its kernels on first use
        for run in steps_by_variant.values():
            run()
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(steps):
        for variant, run in steps_by_variant.items():
            times[variant].append(run())
    medians = {v: statistics.median(t) * 1e3 for v, t in times.items()}
    return {
        "arch": arch,
        "width_mult": width,
        "batch": batch,
        "input_channels": channels,
        "input_size": size,
        "strided_pointwise_convs": len(strided_pointwise_convs(build_model(spec))),
        "step_ms_median": medians,
        "ratio_to_plain": {v: medians[v] / medians["plain"] for v in VARIANTS},
    }


def run_all(steps: int, channels: int) -> list[dict[str, object]]:
    rows = []
    for arch, width, batch in CASES:
        row = measure(arch, width, batch, channels, steps)
        ratios = row["ratio_to_plain"]
        assert isinstance(ratios, dict)
        print(
            f"{arch:>13} x{width}: guarded {ratios['guarded']:.2f}x, "
            f"no oneDNN {ratios['no_onednn']:.2f}x of plain",
            flush=True,
        )
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one ISA, rows as JSON on stdout's last line
        print(json.dumps(run_all(args.steps, channels=3)))
        return
    native = run_all(args.steps, channels=3)
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    child = subprocess.run(
        [sys.executable, "-m", "bench.cpu_kernel_guard", "--child", "--steps", str(args.steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    print(child.stdout, end="")
    avx2 = json.loads(child.stdout.strip().splitlines()[-1])
    save(
        "cpu_kernel_guard",
        {
            "environment": environment(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "steps": args.steps,
            "native_isa": native,
            "avx2": avx2,
        },
    )


if __name__ == "__main__":
    main()
