"""Small networks outside EdgePrune's zoo, written the way users write theirs: functional
activations, concatenation, channel split and shuffle, squeeze-and-excitation, grouped convs.

Each builder takes `num_classes` and `in_channels` (the `module:callable` contract of
`edgeprune compress --model`) and nothing else. The package is installed in the test
environment (scripts/setup.sh) with `edgeprune.models` entry points (its pyproject.toml),
which is how a worker learns of architectures it can build.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    )


class Fire(nn.Module):
    """SqueezeNet's fire module: squeeze 1×1, then expand 1×1 and 3×3 concatenated."""

    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = _conv_bn(cin, squeeze, 1)
        self.expand1 = _conv_bn(squeeze, expand, 1)
        self.expand3 = _conv_bn(squeeze, expand, 3)

    def forward(self, x: Tensor) -> Tensor:
        s = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1(s)), F.relu(self.expand3(s))], dim=1)


class SqueezeNetLike(nn.Module):
    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.stem = _conv_bn(in_channels, 32)
        self.fire1 = Fire(32, 8, 24)
        self.fire2 = Fire(48, 12, 32)
        # SqueezeNet's classifier is a conv: its outputs are the logits, never pruned.
        self.classifier = nn.Conv2d(64, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.stem(x))
        x = self.fire2(F.max_pool2d(self.fire1(x), 2))
        return self.classifier(x).mean(dim=(2, 3))


class DenseLayer(nn.Module):
    """Pre-activation BN-ReLU-conv, whose output is concatenated to its input."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, 2 * growth, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(2 * growth)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv1(F.relu(self.bn(x)))
        y = self.conv2(F.relu(self.bn2(y)))
        return torch.cat([x, y], dim=1)


class DenseNetLike(nn.Module):
    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.block = nn.Sequential(DenseLayer(16, 8), DenseLayer(24, 8), DenseLayer(32, 8))
        self.bn = nn.BatchNorm2d(40)
        self.fc = nn.Linear(40, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.block(self.stem(x))
        return self.fc(F.adaptive_avg_pool2d(F.relu(self.bn(x)), 1).flatten(1))


def channel_shuffle(x: Tensor, groups: int) -> Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """ShuffleNet-v2's basic unit: split, transform one half, concatenate, shuffle."""

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.pw1 = _conv_bn(half, half, 1)
        self.dw = _conv_bn(half, half, 3, groups=half)
        self.pw2 = _conv_bn(half, half, 1)

    def forward(self, x: Tensor) -> Tensor:
        keep, change = x.chunk(2, dim=1)
        change = F.relu(self.pw2(self.dw(F.relu(self.pw1(change)))))
        return channel_shuffle(torch.cat([keep, change], dim=1), 2)


class ShuffleNetLike(nn.Module):
    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.stem = _conv_bn(in_channels, 32)
        self.units = nn.Sequential(ShuffleUnit(32), ShuffleUnit(32))
        self.head = _conv_bn(32, 64, 1)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.units(F.relu(self.stem(x)))
        x = F.relu(self.head(x))
        return self.fc(x.mean(dim=(2, 3)))


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int, act: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = act()
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        scale = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.expand(self.act(self.reduce(scale))))


class SEBasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = _conv_bn(cin, cout, 3, stride)
        self.conv2 = _conv_bn(cout, cout, 3)
        self.se = SqueezeExcite(cout, max(cout // 4, 4))
        self.shortcut = (
            _conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.se(self.conv2(F.relu(self.conv1(x))))
        return F.relu(out + self.shortcut(x))


class SEResNetLike(nn.Module):
    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.stem = _conv_bn(in_channels, 16)
        self.layer1 = SEBasicBlock(16, 16, 1)
        self.layer2 = SEBasicBlock(16, 32, 2)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer2(self.layer1(F.relu(self.stem(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class MBConv(nn.Module):
    """EfficientNet's block: expand 1×1, depthwise 3×3, squeeze-and-excitation, project."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int):
        super().__init__()
        mid = cin * expand
        self.expand = _conv_bn(cin, mid, 1)
        self.dw = _conv_bn(mid, mid, 3, stride, groups=mid)
        self.se = SqueezeExcite(mid, max(cin // 4, 2), act=nn.SiLU)
        self.project = _conv_bn(mid, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = F.silu(self.dw(F.silu(self.expand(x))))
        out = self.project(self.se(out))
        return x + out if self.residual else out


class EfficientNetLike(nn.Module):
    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.stem = _conv_bn(in_channels, 16)
        self.blocks = nn.Sequential(MBConv(16, 16, 4, 1), MBConv(16, 24, 4, 2))
        self.head = _conv_bn(24, 64, 1)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(F.silu(self.stem(x)))
        x = F.silu(self.head(x))
        return self.fc(self.dropout(F.adaptive_avg_pool2d(x, 1).flatten(1)))


class GroupedNet(nn.Module):
    """A plain camera-style CNN whose middle 3×3 convs are grouped (ResNeXt-like)."""

    def __init__(self, num_classes: int, in_channels: int):
        super().__init__()
        self.conv1 = _conv_bn(in_channels, 32)
        self.conv2 = _conv_bn(32, 64, 1)
        self.group3 = _conv_bn(64, 64, 3, groups=4)
        self.conv4 = _conv_bn(64, 64, 1)
        self.conv5 = _conv_bn(64, 96, 3, stride=2)
        self.conv6 = _conv_bn(96, 96, 3)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.fc = nn.Linear(96 * 4 * 4, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.group3(F.relu(self.conv2(x))))
        x = F.relu(self.conv4(x))
        x = F.relu(self.conv6(F.relu(self.conv5(x))))
        x = F.adaptive_avg_pool2d(self.upsample(x), 4)
        return self.fc(torch.flatten(x, 1))


def build_squeezenet(*, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return SqueezeNetLike(num_classes, in_channels)


def build_densenet(*, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return DenseNetLike(num_classes, in_channels)


def build_shufflenet(*, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return ShuffleNetLike(num_classes, in_channels)


def build_se_resnet(*, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return SEResNetLike(num_classes, in_channels)


def build_efficientnet(*, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return EfficientNetLike(num_classes, in_channels)


def build_grouped(*, num_classes: int = 10, in_channels: int = 3) -> nn.Module:
    return GroupedNet(num_classes, in_channels)


BUILDERS = {
    "squeezenet_fire": build_squeezenet,
    "densenet_block": build_densenet,
    "shufflenet_unit": build_shufflenet,
    "se_resnet": build_se_resnet,
    "mbconv_se": build_efficientnet,
    "grouped_cnn": build_grouped,
}
