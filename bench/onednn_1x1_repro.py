"""Standalone reproduction of the oneDNN hang in a strided 1×1 convolution's backward pass.

Each case runs in its own subprocess (a hung case cannot be interrupted from Python, so the
parent kills it after `--timeout` seconds). A case repeats forward + backward of one 1×1
convolution and compares the weight gradient with a float64 reference computed without
oneDNN, so silent corruption shows up as `wrong` rather than `ok`.

`ONEDNN_MAX_CPU_ISA=AVX2` makes oneDNN on an AVX-512 machine pick the kernels an AVX2-only
CPU (e.g. AMD EPYC before Zen 4) would run, so the failure reproduces on either kind.

    python -m bench.onednn_1x1_repro                 # the grid, ISA capped at AVX2
    python -m bench.onednn_1x1_repro --isa DEFAULT   # the same grid on the native ISA
    python -m bench.onednn_1x1_repro --out bench/results/onednn_1x1_repro_avx2.json

Findings are summarised in docs/cpu-kernels.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CHILD = r"""
import sys, torch, torch.nn.functional as F
n, cin, cout, hw, stride, threads, iters, nhwc, guarded, bias = map(int, sys.argv[1:11])
torch.set_num_threads(threads)
torch.manual_seed(0)
fmt = torch.channels_last if nhwc else torch.contiguous_format
x = torch.randn(n, cin, hw, hw).to(memory_format=fmt).requires_grad_()
w = torch.randn(cout, cin, 1, 1).requires_grad_()
b = torch.randn(cout).requires_grad_() if bias else None
with torch.backends.mkldnn.flags(enabled=False):
    xd, wd = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
    bd = b.detach().double() if bias else None
    F.conv2d(xd, wd, bd, stride=stride).square().sum().backward()
for i in range(iters):
    w.grad = None
    if guarded:  # what pruning.cpu_kernels does: subsample, then a unit-stride 1x1 conv
        y = F.conv2d(x[:, :, ::stride, ::stride], w, b)
    else:
        y = F.conv2d(x, w, b, stride=stride)
    y.square().sum().backward()
    err = float((w.grad.double() - wd.grad).abs().max() / wd.grad.abs().max())
    if err > 1e-3:
        print(f"wrong at iteration {i}: relative error {err:.3g}", flush=True)
        sys.exit(3)
print("ok", flush=True)
"""


def run_case(case: dict[str, int], isa: str, timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    if isa != "DEFAULT":
        env["ONEDNN_MAX_CPU_ISA"] = isa
    keys = ("batch", "cin", "cout", "hw", "stride", "threads", "iters", "nhwc", "guarded", "bias")
    args = [str(case[k]) for k in keys]
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        status, detail = "hang", f"no result after {timeout:.0f} s"
    else:
        if proc.returncode == 0:
            status, detail = "ok", ""
        elif proc.returncode == 3:
            status, detail = "wrong", proc.stdout.strip()
        else:
            status, detail = "crash", f"exit {proc.returncode}"
    return {
        **case,
        "isa": isa,
        "status": status,
        "detail": detail,
        "seconds": round(time.perf_counter() - started, 2),
    }


def _case(**overrides: int) -> dict[str, int]:
    case = {
        "batch": 16, "cin": 4, "cout": 8, "hw": 32, "stride": 2, "threads": 2,
        "iters": 30, "nhwc": 1, "guarded": 0, "bias": 0,
    }  # fmt: skip
    case.update(overrides)
    return case


def grid() -> list[dict[str, int]]:
    """Three sweeps around the case seen in CI (ResNet option-B shortcut, 4 -> 8 channels)."""
    cases = []
    # 1. Stride × threads × memory format, each plain and guarded.
    for stride, threads, nhwc, guarded in itertools.product((1, 2), (1, 2), (0, 1), (0, 1)):
        if not (guarded and stride == 1):  # the guard only changes strided convs
            cases.append(_case(stride=stride, threads=threads, nhwc=nhwc, guarded=guarded))
    # 2. Input channels (the AVX2 kernel works in blocks of 8) with and without a bias.
    for cin, bias in itertools.product((1, 3, 4, 7, 8, 12, 16), (0, 1)):
        cases.append(_case(cin=cin, hw=16, threads=1, bias=bias))
    # 3. Batch size.
    for batch in (1, 64):
        cases.append(_case(batch=batch, threads=1))
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--isa", default="AVX2", help="ONEDNN_MAX_CPU_ISA, or DEFAULT")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    for case in grid():
        row = run_case(case, args.isa, args.timeout)
        rows.append(row)
        print(
            f"{row['isa']:>7} n={row['batch']:<3} {row['cin']:>2}->{row['cout']:<3} "
            f"{row['hw']:>2}px stride={row['stride']} threads={row['threads']} "
            f"{'nhwc' if row['nhwc'] else 'nchw'} {'bias' if row['bias'] else 'no bias'} "
            f"{'guarded' if row['guarded'] else 'plain  '} "
            f"{row['status']:<5} {row['seconds']:>6.2f}s {row['detail']}",
            flush=True,
        )
    if args.out is not None:
        import torch

        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "torch": torch.__version__,
                    "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                    "rows": rows,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
