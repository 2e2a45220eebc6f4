"""FLOPs (MACs of conv and linear layers) and parameter counts."""

from __future__ import annotations

import torch
from torch import nn

from pruning.models import ModelSpec, build_model
from pruning.network.metrics import count_model


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)  # 8×8 out
        self.bn = nn.BatchNorm2d(4)
        self.dw = nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4, bias=False)  # 4×4 out
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


def test_hand_computed_tiny_net() -> None:
    model = Tiny()
    cost = count_model(model, (3, 8, 8))
    conv = 3 * 3 * 8 * 8 * 3 * 4  # Kh·Kw·Hout·Wout·Cin·Cout
    dw = 3 * 3 * 4 * 4 * 4 * 4 // 4  # groups divide
    fc = 64 * 5
    assert [layer.flops for layer in cost.layers] == [conv, dw, fc]
    assert cost.flops == conv + dw + fc == 7808
    assert cost.params == (3 * 9 * 4 + 4) + (4 + 4) + 4 * 9 + (64 * 5 + 5)
    first = cost.layers[0]
    assert (first.name, first.type, first.params, first.in_channels, first.out_channels) == (
        "conv",
        "Conv2d",
        3 * 9 * 4 + 4,
        3,
        4,
    )
    assert cost.layers[2].type == "Linear" and cost.layers[2].in_channels == 64


def test_modes_and_bn_statistics_are_restored() -> None:
    model = Tiny().train()
    model.fc.eval()
    count_model(model, (3, 8, 8))
    assert model.training and model.conv.training and not model.fc.training
    assert int(model.bn.num_batches_tracked) == 0
    assert torch.equal(model.bn.running_mean, torch.zeros(4))
    assert not model.conv._forward_hooks


def test_resnet18_imagenet_cost_matches_torchvision() -> None:
    cost = count_model(build_model(ModelSpec("resnet18", num_classes=1000)), (3, 224, 224))
    assert cost.flops == 1_814_073_344  # torchvision reports 1.81 GFLOPS (MACs)
    assert cost.params == 11_689_512


def test_vgg16_cifar_cost_matches_the_paper() -> None:
    cost = count_model(build_model(ModelSpec("vgg16")), (3, 32, 32))
    assert abs(cost.flops - 3.13e8) / 3.13e8 < 0.01  # the paper's VGG-16 baseline: 3.13e8
