"""Imports every model module so that their `@register_model` decorators run."""

from pruning.models import (
    mobilenet,
    mobilenet_v2,
    mobilenet_v2_imagenet,
    resnet_cifar,
    resnet_imagenet,
    vgg,
)

__all__ = [
    "mobilenet",
    "mobilenet_v2",
    "mobilenet_v2_imagenet",
    "resnet_cifar",
    "resnet_imagenet",
    "vgg",
]
