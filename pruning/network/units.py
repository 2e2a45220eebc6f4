"""Prunable units: the sets of output channels that are pruned together.

A unit is named after the conv whose output channels it owns. The gate of the unit multiplies
the output of `gate_at`, the last channel-wise module that belongs to the unit (BN, activation,
pooling, and for MobileNet the following depthwise conv with its BN and activation), so that
masking a channel is exactly equivalent to removing it (see ALGORITHM.md, step 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from torch import nn


@dataclass(frozen=True)
class UnitSpec:
    """One prunable unit of a model.

    name: stable name used in reports and history (the conv's module path).
    conv: module path of the conv whose output channels are the unit's channels.
    gate_at: module path whose forward output is multiplied by the unit's gate; None for units
        found by `pruning.network.discovery`, whose gates always fold into the layers that
        read them.
    """

    name: str
    conv: str
    gate_at: str | None = None


@runtime_checkable
class PrunableModel(Protocol):
    """Models of the zoo declare their default unit policy (ALGORITHM.md, 'Which units')."""

    def prunable_units(self) -> list[UnitSpec]: ...


def unit_widths(model: nn.Module, units: list[UnitSpec]) -> list[int]:
    """Current channel count of each unit, read from its conv."""
    modules = dict(model.named_modules())
    widths = []
    for unit in units:
        conv = modules[unit.conv]
        if not isinstance(conv, nn.Conv2d | nn.Linear):
            raise TypeError(f"unit {unit.name}: {unit.conv} is {type(conv).__name__}, not a conv")
        widths.append(conv.out_channels if isinstance(conv, nn.Conv2d) else conv.out_features)
    return widths
