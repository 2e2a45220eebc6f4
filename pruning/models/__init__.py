"""The model zoo: builders registered by name, and the width helpers they share.

Importing this package does not import the zoo; `build_model` and `available_models` do.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from pruning.models.registry import (
    ModelBuilder,
    ModelSpec,
    UnknownArchitecture,
    available_models,
    build_model,
    register_model,
)

__all__ = [
    "ModelBuilder",
    "ModelSpec",
    "UnknownArchitecture",
    "available_models",
    "build_model",
    "register_model",
    "resolve_widths",
    "scale_width",
]


def scale_width(channels: int, width_mult: float) -> int:
    """A default channel count scaled by `width_mult`, rounded, never below one."""
    if not width_mult > 0:
        raise ValueError(f"width_mult must be > 0, got {width_mult!r}")
    return max(1, round(channels * width_mult))


def resolve_widths(arch: str, defaults: Sequence[int], widths: Sequence[int] | None) -> list[int]:
    """The unit widths to build: `widths` when given (validated), else the scaled defaults."""
    if widths is None:
        return list(defaults)
    if len(widths) != len(defaults):
        raise ValueError(
            f"{arch}: widths has {len(widths)} entries but the model has "
            f"{len(defaults)} prunable units"
        )
    resolved = []
    for i, width in enumerate(widths):
        try:
            value = operator.index(width)  # accepts numpy integers, refuses floats
        except TypeError:
            value = 0
        if isinstance(width, bool) or value < 1:
            raise ValueError(f"{arch}: widths[{i}] must be a positive integer, got {width!r}")
        resolved.append(value)
    return resolved
