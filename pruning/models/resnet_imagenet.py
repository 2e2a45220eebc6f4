"""ImageNet-style ResNets whose state-dict keys are exactly torchvision's.

conv1/bn1/maxpool stem, layer1..4, fc; blocks have conv1/bn1/conv2/bn2[/conv3/bn3] and
downsample.0/.1, with the stride on the 3×3 conv of a bottleneck (torchvision's "v1.5").
Parameterless ReLUs are per position (relu1, relu2, ...) because gates are forward hooks on
modules; they do not appear in state dicts. The adaptive average pool makes 32×32 inputs run.
Units (ALGORITHM.md): conv1 of a basic block; conv1 and conv2 of a bottleneck.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from pruning.models import resolve_widths, scale_width
from pruning.models.registry import register_model
from pruning.network.units import UnitSpec

_STAGE_PLANES = (64, 128, 256, 512)


def _downsample(in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False),
        nn.BatchNorm2d(out_planes),
    )


class BasicBlock(nn.Module):
    expansion = 1
    units_per_block = 1

    def __init__(self, in_planes: int, planes: int, mids: Sequence[int], stride: int) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, mids[0], 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(mids[0])
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(mids[0], out_planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.downsample = _downsample(in_planes, out_planes, stride)
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu2(out + identity)

    @staticmethod
    def units(path: str) -> list[UnitSpec]:
        return [UnitSpec(f"{path}.conv1", f"{path}.conv1", f"{path}.relu1")]


class Bottleneck(nn.Module):
    expansion = 4
    units_per_block = 2

    def __init__(self, in_planes: int, planes: int, mids: Sequence[int], stride: int) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, mids[0], 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mids[0])
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(mids[0], mids[1], 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mids[1])
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(mids[1], out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.downsample = _downsample(in_planes, out_planes, stride)
        self.relu3 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu3(out + identity)

    @staticmethod
    def units(path: str) -> list[UnitSpec]:
        return [
            UnitSpec(f"{path}.conv1", f"{path}.conv1", f"{path}.relu1"),
            UnitSpec(f"{path}.conv2", f"{path}.conv2", f"{path}.relu2"),
        ]


class ResNet(nn.Module):
    head_name = "fc"

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: Sequence[int],
        *,
        stage_planes: Sequence[int],
        unit_widths: Sequence[int],
        stem_width: int,
        in_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, stem_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self._units: list[UnitSpec] = []
        mids: Iterator[int] = iter(unit_widths)
        in_planes = stem_width
        stages = []
        for stage, (planes, count) in enumerate(zip(stage_planes, layers, strict=True)):
            blocks = []
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                block_mids = [next(mids) for _ in range(block.units_per_block)]
                blocks.append(block(in_planes, planes, block_mids, stride))
                in_planes = planes * block.expansion
                self._units += block.units(f"layer{stage + 1}.{index}")
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(in_planes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def prunable_units(self) -> list[UnitSpec]:
        return list(self._units)


def _build(
    arch: str,
    block: type[BasicBlock] | type[Bottleneck],
    layers: Sequence[int],
    *,
    in_channels: int,
    num_classes: int,
    width_mult: float,
    widths: Sequence[int] | None,
) -> ResNet:
    planes = [scale_width(p, width_mult) for p in _STAGE_PLANES]
    # Every unit of a block defaults to the stage's planes (conv1 and conv2 of a bottleneck).
    defaults = [
        p for p, n in zip(planes, layers, strict=True) for _ in range(n * block.units_per_block)
    ]
    return ResNet(
        block,
        layers,
        stage_planes=planes,
        unit_widths=resolve_widths(arch, defaults, widths),
        stem_width=scale_width(64, width_mult),
        in_channels=in_channels,
        num_classes=num_classes,
    )


@register_model("resnet18")
def resnet18(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "resnet18", BasicBlock, (2, 2, 2, 2), in_channels=in_channels,
        num_classes=num_classes, width_mult=width_mult, widths=widths,
    )  # fmt: skip


@register_model("resnet34")
def resnet34(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "resnet34", BasicBlock, (3, 4, 6, 3), in_channels=in_channels,
        num_classes=num_classes, width_mult=width_mult, widths=widths,
    )  # fmt: skip


@register_model("resnet50")
def resnet50(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    return _build(
        "resnet50", Bottleneck, (3, 4, 6, 3), in_channels=in_channels,
        num_classes=num_classes, width_mult=width_mult, widths=widths,
    )  # fmt: skip
