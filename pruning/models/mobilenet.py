"""The paper's 10-block MobileNet (v1-style) for 32×32 inputs.

Stem: 3×3 conv, 32 channels, stride 1. Then 10 depthwise-separable blocks
(dw3×3 → BN → ReLU → pw1×1 → BN → ReLU) with MobileNet v1's first widths and CIFAR strides:
64, 128/2, 128, 256/2, 256, 512/2, 512, 512, 512, 1024/2 (32×32 → 2×2), then global average
pooling and a Linear. The paper does not list its 10 blocks; this is v1's 13 blocks without
two of its six 512-wide blocks and the last 1024-wide block (1.62M parameters, 33.6M MACs).

Units are the pointwise convs' outputs. The next block's depthwise conv (and its BN and ReLU)
is channel-wise, so it belongs to the unit: the gate sits at that block's `dw_relu`; the last
pointwise unit ends at its own `pw_relu` (ALGORITHM.md, step 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pruning.models import resolve_widths, scale_width
from pruning.models.registry import register_model
from pruning.network.units import UnitSpec

_STEM = 32
# (pointwise width, depthwise stride) per block.
_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1),
    (512, 2), (512, 1), (512, 1), (512, 1), (1024, 2),
)  # fmt: skip


class DepthwiseSeparable(nn.Module):
    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(
            in_planes, in_planes, 3, stride=stride, padding=1, groups=in_planes, bias=False
        )
        self.dw_bn = nn.BatchNorm2d(in_planes)
        self.dw_relu = nn.ReLU()
        self.pw = nn.Conv2d(in_planes, out_planes, 1, bias=False)
        self.pw_bn = nn.BatchNorm2d(out_planes)
        self.pw_relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_relu(self.dw_bn(self.dw(x)))
        return self.pw_relu(self.pw_bn(self.pw(x)))


class MobileNet(nn.Module):
    head_name = "classifier"

    def __init__(
        self,
        *,
        stem_width: int,
        block_widths: Sequence[int],
        strides: Sequence[int],
        in_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, stem_width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU()
        blocks = []
        planes = stem_width
        for width, stride in zip(block_widths, strides, strict=True):
            blocks.append(DepthwiseSeparable(planes, width, stride))
            planes = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.relu(self.bn1(self.conv1(x))))
        return self.classifier(torch.flatten(self.pool(x), 1))

    def prunable_units(self) -> list[UnitSpec]:
        count = len(self.blocks)
        units = []
        for i in range(count):
            conv = f"blocks.{i}.pw"
            gate = f"blocks.{i + 1}.dw_relu" if i + 1 < count else f"blocks.{i}.pw_relu"
            units.append(UnitSpec(conv, conv, gate))
        return units


@register_model("mobilenet")
def mobilenet(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    defaults = [scale_width(w, width_mult) for w, _ in _BLOCKS]
    return MobileNet(
        stem_width=scale_width(_STEM, width_mult),
        block_widths=resolve_widths("mobilenet", defaults, widths),
        strides=[s for _, s in _BLOCKS],
        in_channels=in_channels,
        num_classes=num_classes,
    )
