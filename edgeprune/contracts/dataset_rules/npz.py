"""An `.npz`'s arrays: the names it must hold, and the checks on `x`, `y`, `x_test` and
`y_test` that need only their shapes and dtypes (`npz_layout`). The two that need the values
stay with numpy on each side, with `class_labels` and `not_finite` for their words."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from edgeprune.contracts.dataset_rules.errors import DatasetRuleError
from edgeprune.contracts.dataset_rules.split import check_test_channels

NPZ_ARRAYS = ("x", "y", "x_test", "y_test")
_CHANNELS = (1, 3)


class _DType(Protocol):
    @property
    def kind(self) -> str: ...


class _Array(Protocol):
    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> _DType: ...


@dataclass(frozen=True)
class ArrayFacts:
    """What numpy says about an array without looking at its values."""

    shape: tuple[int, ...]
    kind: str  # numpy's dtype.kind: 'u', 'i', 'f', 'b', 'c', 'U', 'O', ...
    dtype: str

    @classmethod
    def of(cls, array: _Array) -> ArrayFacts:
        """From a numpy array (read through its shape and dtype: no numpy import here)."""
        return cls(tuple(int(d) for d in array.shape), array.dtype.kind, str(array.dtype))


@dataclass(frozen=True)
class ImageArray:
    """How an image array's axes are read: 'NCHW', 'NHWC' or 'NHW' (grey), and the (C, H, W)
    of one sample."""

    axes: str
    sample_shape: tuple[int, int, int]


@dataclass(frozen=True)
class NpzLayout:
    x: ImageArray
    x_test: ImageArray | None


def check_npz_names(names: Collection[str]) -> None:
    missing = [n for n in ("x", "y") if n not in names]
    if missing:
        raise DatasetRuleError(
            f"the .npz has no {' or '.join(missing)} array (found {sorted(names)})"
        )
    if ("x_test" in names) != ("y_test" in names):
        raise DatasetRuleError("x_test and y_test must be given together")


def npz_layout(arrays: Mapping[str, ArrayFacts]) -> NpzLayout:
    """The checks on an `.npz`'s arrays that need only their shapes and dtypes."""
    check_npz_names(arrays.keys())
    x = _image_array(arrays["x"], "x")
    _check_labels(arrays["y"], "y", arrays["x"].shape[0], "x")
    x_test = None
    if "x_test" in arrays:
        x_test = _image_array(arrays["x_test"], "x_test")
        _check_labels(arrays["y_test"], "y_test", arrays["x_test"].shape[0], "x_test")
        check_test_channels(x.sample_shape[0], x_test.sample_shape[0])
    return NpzLayout(x, x_test)


def _image_array(facts: ArrayFacts, name: str) -> ImageArray:
    if facts.kind not in "uif":
        raise DatasetRuleError(f"{name} must hold numbers, not dtype {facts.dtype}")
    shape = facts.shape
    if len(shape) == 3:
        axes, sample = "NHW", (1, shape[1], shape[2])
    elif len(shape) == 4 and shape[3] in _CHANNELS and shape[1] not in _CHANNELS:
        # Channels last when the last axis looks like channels and the second does not.
        axes, sample = "NHWC", (shape[3], shape[1], shape[2])
    elif len(shape) == 4:
        axes, sample = "NCHW", (shape[1], shape[2], shape[3])
    else:
        raise DatasetRuleError(
            f"{name} must be (N, C, H, W), (N, H, W, C) or (N, H, W); got {list(shape)}"
        )
    if shape[0] == 0 or min(sample) < 1:
        raise DatasetRuleError(f"{name} is empty (shape {list(shape)})")
    return ImageArray(axes, sample)


def _check_labels(facts: ArrayFacts, name: str, samples: int, xname: str) -> None:
    if len(facts.shape) != 1:
        raise DatasetRuleError(
            f"{name} must be one label per sample, got shape {list(facts.shape)}"
        )
    if facts.kind not in "iuf":
        raise DatasetRuleError(f"{name} must hold integer class labels, not dtype {facts.dtype}")
    if facts.shape[0] != samples:
        raise DatasetRuleError(f"{xname} has {samples} samples but {name} has {facts.shape[0]}")


def class_labels(values: Sequence[float], name: str, dtype: str) -> list[int]:
    """A label array's distinct values as integers: floats only when whole numbers (5.0),
    and every label within int64."""
    labels = []
    for value in values:
        if not math.isfinite(value) or value != int(value) or abs(value) >= 2**63:
            raise DatasetRuleError(f"{name} must hold integer class labels, not dtype {dtype}")
        labels.append(int(value))
    return labels


def not_finite(name: str) -> DatasetRuleError:
    return DatasetRuleError(f"{name} contains NaN or infinite values (as float32)")
