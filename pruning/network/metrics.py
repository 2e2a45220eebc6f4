"""FLOPs and parameter counts, measured on a real forward pass.

FLOPs are MACs (multiply-accumulates) of conv and linear layers only: per sample,
Kh·Kw·Hout·Wout·Cin·Cout/groups for a conv and in·out for a linear; bias, BN, activation and
pooling terms are left out, as in the usual CNN tables (torchvision's 1.81 "GFLOPS" for
ResNet-18 are such MACs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class LayerCost:
    name: str
    type: str
    flops: int
    params: int
    in_channels: int
    out_channels: int


@dataclass(frozen=True)
class ModelCost:
    flops: int  # MACs of conv and linear layers, per sample
    params: int  # every parameter of the model
    layers: list[LayerCost] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def count_model(model: nn.Module, input_shape: tuple[int, int, int]) -> ModelCost:
    """MACs of conv and linear layers for one (C, H, W) sample, and the parameter count.

    Runs one forward pass of a zero batch of size 1 in eval mode (so BN statistics are not
    touched), then restores every module's train/eval mode. A module called twice is counted
    twice.
    """
    layers: list[LayerCost] = []

    def hook(name: str) -> Any:
        def record(
            module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
        ) -> None:
            layers.append(_layer_cost(name, module, output))

        return record

    handles = [
        module.register_forward_hook(hook(name))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    modes = {module: module.training for module in model.modules()}
    reference = next(model.parameters(), None)
    device = reference.device if reference is not None else torch.device("cpu")
    dtype = (
        reference.dtype
        if reference is not None and reference.is_floating_point()
        else torch.float32
    )
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    return ModelCost(
        flops=sum(layer.flops for layer in layers),
        params=sum(p.numel() for p in model.parameters()),
        layers=layers,
    )


def _layer_cost(name: str, module: nn.Module, output: torch.Tensor) -> LayerCost:
    params = sum(p.numel() for p in module.parameters(recurse=False))
    per_sample = output.numel() // output.shape[0]
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        flops = per_sample * (module.in_channels // module.groups) * kh * kw
        return LayerCost(name, "Conv2d", flops, params, module.in_channels, module.out_channels)
    assert isinstance(module, nn.Linear)  # only conv and linear modules are hooked
    flops = per_sample * module.in_features
    return LayerCost(name, "Linear", flops, params, module.in_features, module.out_features)
