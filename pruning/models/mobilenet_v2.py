"""CIFAR-style MobileNetV2 (Sandler et al. 2018): inverted residuals, expansion 6.

For 32×32 inputs the stem is stride 1 and, as in the common CIFAR variant, the 24-channel
stage is stride 1 too, so the last feature map is 4×4 (ImageNet strides would leave 1×1);
2.24M parameters and 88M MACs at width 1.
Units are the expand (first 1×1) convs of the blocks that have one; their channels run
through the depthwise conv, so the gate sits at the ReLU6 after the depthwise BN. The
projection output is residual-coupled and never pruned (ALGORITHM.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pruning.models import resolve_widths, scale_width
from pruning.models.registry import register_model
from pruning.network.units import UnitSpec

_STEM = 32
_LAST = 1280
# (expansion t, output channels c, repeats n, first stride s), as in the paper's table 2.
_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip


class InvertedResidual(nn.Module):
    def __init__(self, in_planes: int, hidden: int | None, out_planes: int, stride: int) -> None:
        """`hidden` is the expand width, None for a block without an expand conv (t = 1)."""
        super().__init__()
        self.use_residual = stride == 1 and in_planes == out_planes
        self.has_expand = hidden is not None
        mid = in_planes
        if hidden is not None:
            self.expand = nn.Conv2d(in_planes, hidden, 1, bias=False)
            self.expand_bn = nn.BatchNorm2d(hidden)
            self.expand_relu = nn.ReLU6()
            mid = hidden
        self.dw = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, groups=mid, bias=False)
        self.dw_bn = nn.BatchNorm2d(mid)
        self.dw_relu = nn.ReLU6()
        self.project = nn.Conv2d(mid, out_planes, 1, bias=False)
        self.project_bn = nn.BatchNorm2d(out_planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expand:
            out = self.expand_relu(self.expand_bn(self.expand(out)))
        out = self.dw_relu(self.dw_bn(self.dw(out)))
        out = self.project_bn(self.project(out))
        return x + out if self.use_residual else out


class MobileNetV2(nn.Module):
    head_name = "classifier"

    def __init__(
        self,
        *,
        stem_width: int,
        last_width: int,
        blocks: Sequence[tuple[int | None, int, int]],
        in_channels: int,
        num_classes: int,
    ) -> None:
        """`blocks` holds (expand width or None, output width, stride) per block."""
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, stem_width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU6()
        layers = []
        self._units: list[UnitSpec] = []
        planes = stem_width
        for index, (hidden, out_planes, stride) in enumerate(blocks):
            layers.append(InvertedResidual(planes, hidden, out_planes, stride))
            if hidden is not None:
                path = f"features.{index}"
                self._units.append(UnitSpec(f"{path}.expand", f"{path}.expand", f"{path}.dw_relu"))
            planes = out_planes
        self.features = nn.Sequential(*layers)
        self.conv_last = nn.Conv2d(planes, last_width, 1, bias=False)
        self.bn_last = nn.BatchNorm2d(last_width)
        self.relu_last = nn.ReLU6()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(last_width, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.relu(self.bn1(self.conv1(x))))
        x = self.relu_last(self.bn_last(self.conv_last(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))

    def prunable_units(self) -> list[UnitSpec]:
        return list(self._units)


@register_model("mobilenet_v2")
def mobilenet_v2(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    stem = scale_width(_STEM, width_mult)
    plan: list[tuple[int, int, int]] = []  # (t, out, stride)
    for t, c, n, s in _SETTINGS:
        plan += [(t, scale_width(c, width_mult), s if i == 0 else 1) for i in range(n)]
    ins = [stem] + [out for _, out, _ in plan[:-1]]
    defaults = [in_planes * t for (t, _, _), in_planes in zip(plan, ins, strict=True) if t != 1]
    chosen = iter(resolve_widths("mobilenet_v2", defaults, widths))
    blocks = [(next(chosen) if t != 1 else None, out, stride) for t, out, stride in plan]
    return MobileNetV2(
        stem_width=stem,
        last_width=scale_width(_LAST, width_mult),
        blocks=blocks,
        in_channels=in_channels,
        num_classes=num_classes,
    )
