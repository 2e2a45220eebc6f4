"""The in-memory form of an edge task's data, and the error every loader raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import torch

from pruning.data.augmentation import DataKind

if TYPE_CHECKING:
    from pruning.data.samples import Samples

# Inputs of a split: a float32 tensor in memory, or `Samples` read a batch at a time.
Inputs: TypeAlias = "torch.Tensor | Samples"


class DataError(ValueError):
    """The dataset cannot be used as given (one-line reason naming the offending part)."""


@dataclass
class TaskData:
    """Train and test splits as tensors, normalised with the train split's statistics.

    x_*: float32 (N, C, H, W), normalised per channel — in memory for small float sources,
    `Samples` (decoded or converted per batch) for image files and 8-bit arrays;
    y_*: int64 class indices into `classes`.
    """

    x_train: Inputs
    y_train: torch.Tensor
    x_test: Inputs
    y_test: torch.Tensor
    classes: list[str]
    input_shape: tuple[int, int, int]
    mean: list[float]
    std: list[float]
    source: str
    # What one unit of the source's values is before normalisation: 1/255 for 8-bit images
    # (a device feeds pixel/255, then (x − mean)/std), 1/16 for digits, 1 for float arrays.
    value_scale: float = 1 / 255
    # What the samples are (pruning.data.augmentation): decides the default augmentation.
    kind: DataKind = "images"

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class RawData:
    """What a source reader produces before the shared checks, resize, split and normalisation.

    x_*: float32 (N, C, H, W) in the source's own scale (uint8 sources divided by 255), or
    `Samples` that read them so; y_*: int64 indices into `classes`. The test split is optional.
    """

    x_train: Inputs
    y_train: torch.Tensor
    classes: list[str]
    x_test: Inputs | None = None
    y_test: torch.Tensor | None = None
    value_scale: float = 1 / 255
    kind: DataKind = "images"
