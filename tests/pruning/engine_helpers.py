"""Small models and random tasks shared by the engine tests."""

from __future__ import annotations

import torch

from pruning.engine import TaskTensors
from pruning.models.registry import ModelSpec, build_model

# One of each unit policy: plain chain, basic block, bottleneck, depthwise-separable
# and inverted residual.
ARCHS = ["vgg11", "resnet20", "resnet50", "mobilenet", "mobilenet_v2"]


def tiny_spec(arch: str, in_channels: int = 1, num_classes: int = 4) -> ModelSpec:
    return ModelSpec(arch=arch, in_channels=in_channels, num_classes=num_classes, width_mult=0.25)


def tiny_model(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(tiny_spec(arch))


def random_task(n_train: int = 48, n_test: int = 16, classes: int = 4) -> TaskTensors:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n_train + n_test, 1, 32, 32, generator=generator)
    y = torch.randint(0, classes, (n_train + n_test,), generator=generator)
    return TaskTensors(x[:n_train], y[:n_train], x[n_train:], y[n_train:])
