"""CIFAR ResNets (He et al. 2016, section 4.2): 3 stages of 16/32/64 channels, 6n+2 layers.

Shortcuts use option B (a 1×1 conv + BN where the shape changes) rather than the paper's
zero-padding option A, so the dependency graph is plain convs and BNs; this adds about 2.8k
parameters to resnet20 (272k instead of 270k). Only the first conv of each block is a unit:
its outputs never leave the block, so the residual widths stay fixed (ALGORITHM.md).
Each block has its own ReLU instance per position because gates are forward hooks on modules.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pruning.models import resolve_widths, scale_width
from pruning.models.registry import register_model
from pruning.network.units import UnitSpec

_STAGE_WIDTHS = (16, 32, 64)


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, mid_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, mid_planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(mid_planes, out_planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet(nn.Module):
    head_name = "fc"

    def __init__(
        self,
        *,
        blocks_per_stage: int,
        stage_widths: Sequence[int],
        unit_widths: Sequence[int],
        in_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, stage_widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stage_widths[0])
        self.relu = nn.ReLU()
        mids = iter(unit_widths)
        planes = stage_widths[0]
        self._units: list[UnitSpec] = []
        stages = []
        for stage, width in enumerate(stage_widths):
            blocks = []
            for index in range(blocks_per_stage):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(BasicBlock(planes, next(mids), width, stride))
                planes = width
                path = f"layer{stage + 1}.{index}"
                self._units.append(UnitSpec(f"{path}.conv1", f"{path}.conv1", f"{path}.relu1"))
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def prunable_units(self) -> list[UnitSpec]:
        return list(self._units)


def _build(
    arch: str,
    depth: int,
    *,
    in_channels: int,
    num_classes: int,
    width_mult: float,
    widths: Sequence[int] | None,
) -> CifarResNet:
    n = (depth - 2) // 6
    stage_widths = [scale_width(w, width_mult) for w in _STAGE_WIDTHS]
    defaults = [w for w in stage_widths for _ in range(n)]
    return CifarResNet(
        blocks_per_stage=n,
        stage_widths=stage_widths,
        unit_widths=resolve_widths(arch, defaults, widths),
        in_channels=in_channels,
        num_classes=num_classes,
    )


@register_model("resnet20")
def resnet20(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "resnet20", 20, in_channels=in_channels, num_classes=num_classes,
        width_mult=width_mult, widths=widths,
    )  # fmt: skip


@register_model("resnet32")
def resnet32(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "resnet32", 32, in_channels=in_channels, num_classes=num_classes,
        width_mult=width_mult, widths=widths,
    )  # fmt: skip


@register_model("resnet56")
def resnet56(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "resnet56", 56, in_channels=in_channels, num_classes=num_classes,
        width_mult=width_mult, widths=widths,
    )  # fmt: skip


@register_model("resnet110")
def resnet110(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "resnet110", 110, in_channels=in_channels, num_classes=num_classes,
        width_mult=width_mult, widths=widths,
    )  # fmt: skip
