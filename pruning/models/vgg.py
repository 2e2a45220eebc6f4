"""CIFAR-style VGG with batch norm (conv3x3 → BN → ReLU, max-pool per stage).

The classifier is a single Linear from the last conv's width: after five pools a 32×32 input
is 1×1, and an AdaptiveAvgPool2d(1) before the flatten lets other input sizes work too.
Every conv's output channels form a unit, the last conv included (ALGORITHM.md).

Module paths follow the common CIFAR VGG layout (`features.<i>` for conv/BN, biased convs,
`classifier`), so state dicts of that layout load as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pruning.models import resolve_widths, scale_width
from pruning.models.registry import register_model
from pruning.network.units import UnitSpec

# Conv widths per stage; "M" is a 2×2 max-pool.
_CFGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [
        64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
    ],
    "vgg19": [
        64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
        512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
    ],
}  # fmt: skip


class VGG(nn.Module):
    head_name = "classifier"

    def __init__(self, layout: Sequence[int | str], *, in_channels: int, num_classes: int) -> None:
        """`layout` is a cfg whose ints are the actual conv widths (already scaled/overridden)."""
        super().__init__()
        layers: list[nn.Module] = []
        self._units: list[UnitSpec] = []
        channels = in_channels
        for item in layout:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                # A pool directly after a unit's ReLU is the end of that unit: the gate moves.
                last = self._units[-1]
                self._units[-1] = UnitSpec(last.name, last.conv, f"features.{len(layers) - 1}")
                continue
            width = int(item)
            conv_index = len(layers)
            layers += [
                nn.Conv2d(channels, width, kernel_size=3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
            conv = f"features.{conv_index}"
            self._units.append(UnitSpec(conv, conv, f"features.{conv_index + 2}"))
            channels = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    def prunable_units(self) -> list[UnitSpec]:
        return list(self._units)


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _build(
    arch: str,
    *,
    in_channels: int,
    num_classes: int,
    width_mult: float,
    widths: Sequence[int] | None,
) -> VGG:
    cfg = _CFGS[arch]
    defaults = [scale_width(int(c), width_mult) for c in cfg if c != "M"]
    chosen = iter(resolve_widths(arch, defaults, widths))
    layout = ["M" if c == "M" else next(chosen) for c in cfg]
    return VGG(layout, in_channels=in_channels, num_classes=num_classes)


@register_model("vgg11")
def vgg11(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "vgg11",
        in_channels=in_channels,
        num_classes=num_classes,
        width_mult=width_mult,
        widths=widths,
    )


@register_model("vgg13")
def vgg13(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "vgg13",
        in_channels=in_channels,
        num_classes=num_classes,
        width_mult=width_mult,
        widths=widths,
    )


@register_model("vgg16")
def vgg16(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "vgg16",
        in_channels=in_channels,
        num_classes=num_classes,
        width_mult=width_mult,
        widths=widths,
    )


@register_model("vgg19")
def vgg19(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "vgg19",
        in_channels=in_channels,
        num_classes=num_classes,
        width_mult=width_mult,
        widths=widths,
    )
