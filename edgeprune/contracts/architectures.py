"""The model zoo's architecture names, for the command lines' --arch help without loading
torch (tests/cli/test_help.py checks that pruning's registry builds exactly these)."""

from __future__ import annotations

ZOO = (
    "mobilenet",
    "mobilenet_v2",
    "mobilenet_v2_imagenet",
    "resnet18",
    "resnet20",
    "resnet32",
    "resnet34",
    "resnet50",
    "resnet56",
    "resnet110",
    "vgg11",
    "vgg13",
    "vgg16",
    "vgg19",
)
