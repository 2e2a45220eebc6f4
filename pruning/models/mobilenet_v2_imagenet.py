"""ImageNet-style MobileNetV2 with torchvision's module layout, so that torchvision's state
dicts (`features.{i}.conv...`, `classifier.1`) load as they are: 3,504,872 parameters and
about 300M MACs at 224×224, width 1, 1000 classes.

Units are the expand convs (`features.{i}.conv.0.0`) of the blocks that have one; their
channels run through the depthwise conv, so the gate sits at the ReLU6 after the depthwise BN
(`features.{i}.conv.1.2`). The projections are residual-coupled and kept (as in the CIFAR
variant, `pruning.models.mobilenet_v2`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pruning.models import resolve_widths
from pruning.models.registry import register_model
from pruning.network.units import UnitSpec

# (expansion t, output channels c, repeats n, first stride s): torchvision's table.
_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip


def _make_divisible(value: float, divisor: int = 8) -> int:
    """torchvision's rounding of scaled widths: to a multiple of 8, never 10 % below."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class ConvBNReLU6(nn.Sequential):
    """torchvision's Conv2dNormActivation with ReLU6: keys `.0` conv, `.1` BN."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=False),
        )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, hidden: int | None, cout: int, stride: int) -> None:
        """`hidden` is the expand width, None for the block without an expand conv."""
        super().__init__()
        self.use_res_connect = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        mid = cin
        if hidden is not None:
            layers.append(ConvBNReLU6(cin, hidden, kernel=1))
            mid = hidden
        layers += [
            ConvBNReLU6(mid, mid, stride=stride, groups=mid),
            nn.Conv2d(mid, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_res_connect else out


class MobileNetV2ImageNet(nn.Module):
    head_name = "classifier.1"

    def __init__(
        self,
        *,
        stem: int,
        last: int,
        blocks: Sequence[tuple[int | None, int, int]],
        in_channels: int,
        num_classes: int,
    ) -> None:
        super().__init__()
        features: list[nn.Module] = [ConvBNReLU6(in_channels, stem, stride=2)]
        self._units: list[UnitSpec] = []
        planes = stem
        for index, (hidden, cout, stride) in enumerate(blocks, start=1):
            features.append(InvertedResidual(planes, hidden, cout, stride))
            if hidden is not None:
                conv, gate = f"features.{index}.conv.0.0", f"features.{index}.conv.1.2"
                self._units.append(UnitSpec(conv, conv, gate))
            planes = cout
        features.append(ConvBNReLU6(planes, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))

    def prunable_units(self) -> list[UnitSpec]:
        return list(self._units)


@register_model("mobilenet_v2_imagenet")
def mobilenet_v2_imagenet(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    width_mult: float = 1.0,
    widths: Sequence[int] | None = None,
) -> nn.Module:
    if not width_mult > 0:
        raise ValueError(f"width_mult must be > 0, got {width_mult!r}")
    stem = _make_divisible(32 * width_mult)
    plan: list[tuple[int, int, int]] = []  # (t, out, stride)
    for t, c, n, s in _SETTINGS:
        plan += [(t, _make_divisible(c * width_mult), s if i == 0 else 1) for i in range(n)]
    ins = [stem] + [out for _, out, _ in plan[:-1]]
    defaults = [round(cin * t) for (t, _, _), cin in zip(plan, ins, strict=True) if t != 1]
    chosen = iter(resolve_widths("mobilenet_v2_imagenet", defaults, widths))
    blocks = [(next(chosen) if t != 1 else None, out, stride) for t, out, stride in plan]
    return MobileNetV2ImageNet(
        stem=stem,
        last=_make_divisible(1280 * max(1.0, width_mult)),
        blocks=blocks,
        in_channels=in_channels,
        num_classes=num_classes,
    )
