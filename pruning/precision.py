"""Mixed precision for training: which autocast dtype, and whether fp16's gradient scaler.

"auto" is bf16 autocast on CUDA devices that support it, fp16 with a gradient scaler on
those that do not, and fp32 on the CPU (where autocast buys little and costs accuracy).
Gates and their gradients stay float32 whatever the choice: the gate is a float32 leaf, its
product with a weight or a feature map is taken outside autocast's cast list, and fp16's loss
scale is divided out before eq. (5) reads the gradient.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from edgeprune.contracts.limits import Precision


@dataclass(frozen=True)
class Plan:
    dtype: torch.dtype | None  # None: plain fp32, no autocast
    scaled: bool  # fp16: a GradScaler keeps small gradients from flushing to zero

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]


def plan(precision: Precision, device: torch.device) -> Plan:
    if precision == "auto":
        if device.type != "cuda":
            return Plan(None, False)
        bf16 = torch.cuda.is_bf16_supported()
        return Plan(torch.bfloat16, False) if bf16 else Plan(torch.float16, True)
    if precision == "fp32":
        return Plan(None, False)
    if precision == "bf16":
        return Plan(torch.bfloat16, False)
    if precision == "fp16":
        return Plan(torch.float16, True)
    raise ValueError(f"precision must be auto, fp32, bf16 or fp16, got {precision!r}")


@contextlib.contextmanager
def autocast(chosen: Plan, device: torch.device) -> Iterator[None]:
    if chosen.dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=chosen.dtype):
        yield


def scaler(chosen: Plan, device: torch.device) -> torch.amp.GradScaler | None:
    return torch.amp.GradScaler(device.type) if chosen.scaled else None


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last on CUDA, where cuDNN's tensor-core convolutions read NHWC without
    transposes; the default layout on the CPU, where NHWC sends narrow strided 1×1 convs to a
    faulty oneDNN kernel (pruning.cpu_kernels)."""
    return torch.channels_last if device.type == "cuda" else torch.contiguous_format


def prepare_for(model: nn.Module, device: torch.device) -> nn.Module:
    """Put `model`'s 4-D weights in the device's layout; on CUDA also let cuDNN benchmark
    its convolution algorithms (input shapes are fixed within a run)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model
