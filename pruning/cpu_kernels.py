"""Keep training off a faulty oneDNN kernel on CPUs without AVX-512.

oneDNN (the CPU convolution library in PyTorch 2.13) runs a 1×1 convolution with stride > 1
by first copying every s-th pixel into a dense buffer ("reduce to unit stride") and then
running its 1×1 kernel. On AVX2 CPUs, with channels-last activations and fewer than 8 input
channels, the weight-gradient kernel of that path corrupts memory: with one thread it
segfaults, with two it deadlocks in an OpenMP barrier with a worker thread spinning forever
(`bench/onednn_1x1_repro.py`; docs/cpu-kernels.md). Channels-last appears without anyone
asking for it: a one-channel (grey) input is both NCHW- and NHWC-contiguous, and PyTorch
then propagates NHWC through the whole network. Pruning makes narrow layers common.

The guard does the subsampling itself: a strided 1×1 convolution with no padding equals the
same convolution with stride 1 on `x[:, :, ::s, ::s]`, exactly (each output pixel reads one
input pixel). While the guard is on, such convolutions get stride 1 and a pre-hook that
subsamples their input, so oneDNN never takes the faulty path; on exit the modules are as
they were (the exported model keeps its strided convolution). Measured cost: see
bench/results/cpu_kernel_guard.json (the guard is no slower than the unguarded kernel).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor, nn


def strided_pointwise_convs(model: nn.Module) -> list[nn.Conv2d]:
    """Every Conv2d the guard rewrites: 1×1 kernel, stride > 1, no padding."""
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.Conv2d)
        and tuple(m.kernel_size) == (1, 1)
        and tuple(m.stride) != (1, 1)
        and m.padding in ((0, 0), "valid")
    ]


PreHook = Callable[[nn.Module, tuple[Tensor, ...]], tuple[Tensor, ...]]


def _subsample(stride: tuple[int, ...]) -> PreHook:
    sh, sw = stride

    def pre_hook(_module: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (inputs[0][:, :, ::sh, ::sw], *inputs[1:])

    return pre_hook


@contextlib.contextmanager
def guard_cpu_kernels(model: nn.Module, device: torch.device) -> Iterator[None]:
    """Rewrite strided 1×1 convolutions as subsample + unit-stride conv while training on the
    CPU (module docstring). A no-op on other devices."""
    if device.type != "cpu":
        yield
        return
    convs = strided_pointwise_convs(model)
    saved = [(conv, tuple(conv.stride)) for conv in convs]
    handles = []
    try:
        for conv, stride in saved:
            # Registered last, so hooks that measure the conv's input (gate counters) still
            # see the full feature map.
            handles.append(conv.register_forward_pre_hook(_subsample(stride)))
            conv.stride = (1, 1)
        yield
    finally:
        for handle in handles:
            handle.remove()
        for conv, stride in saved:
            conv.stride = stride
