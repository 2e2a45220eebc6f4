"""Which augmentation a task gets by default, and how its padding is filled.

Shift-and-mirror is the paper's augmentation for natural images. It is wrong for data where
a mirrored or shifted sample is another thing: digits (a mirrored 2 is not a 2), sensor
arrays and spectrograms (time and frequency are not symmetric). So the default follows the
kind of data: on for images (image folders, CIFAR, 8-bit arrays, builtin:photos), off for
builtin:digits and float arrays, unless a user asks otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

# images: photographs and other natural images; digits: builtin:digits; arrays: float
# arrays of unknown meaning (sensor windows, spectrograms, features).
DataKind = Literal["images", "digits", "arrays"]


def default_augment(kind: str) -> bool:
    return kind == "images"


def resolve_augment(requested: bool | None, kind: str) -> bool:
    """The user's choice when given, else the default for the data's kind."""
    return default_augment(kind) if requested is None else requested


def pad_for(height: int, width: int) -> int:
    """Shift range scaled to the image: 4 pixels at 32×32 (the paper's), 8 at 64×64."""
    return max(1, round(min(height, width) / 8))


def background_fill(mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """A black pixel (value 0 before normalisation) in normalised units, per channel: padding
    looks like an image border, not like the dataset's average colour."""
    m = torch.tensor(list(mean), dtype=torch.float32)
    s = torch.tensor(list(std), dtype=torch.float32)
    return -m / s
