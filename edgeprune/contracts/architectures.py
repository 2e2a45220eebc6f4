"""The model zoo's architecture names, for the command lines' --arch help without loading
torch (tests/cli/test_help.py checks that pruning's registry builds exactly these), and the
input each is usually trained on."""

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

# Height and width of the input each zoo network is designed for: the CIFAR-style nets
# (resnet20..110, vgg, mobilenet, mobilenet_v2) take 32x32, the ImageNet-style ones 224x224.
# An upload that does not say its input shape, of a checkpoint that does not record one, is
# inspected at this size.
NATURAL_INPUT_HW: dict[str, tuple[int, int]] = {
    name: (224, 224) if name in ("resnet18", "resnet34", "resnet50", "mobilenet_v2_imagenet")
    else (32, 32)
    for name in ZOO
}  # fmt: skip
