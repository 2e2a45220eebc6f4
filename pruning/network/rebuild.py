"""Rebuilding a pruned structure whose units were discovered from the graph: build the full
network, then remove channels from the convs its `ModelSpec` names, so that the pruned state
dict fits."""

from __future__ import annotations

import torch
from torch import nn

from pruning.models.registry import ModelSpec
from pruning.network.dependency import DependencyAdapter
from pruning.network.units import UnitSpec, unit_widths


def shrink_to_widths(model: nn.Module, spec: ModelSpec) -> None:
    """Remove each named conv's trailing channels down to its width (which channels does
    not matter: the pruned weights are loaded afterwards)."""
    assert spec.unit_convs is not None and spec.widths is not None
    if spec.input_hw is None:
        raise ValueError(f"a pruned {spec.arch} needs input_hw to be rebuilt")
    if len(spec.unit_convs) != len(spec.widths):
        raise ValueError("unit_convs and widths differ in length")
    units = [UnitSpec(conv, conv) for conv in spec.unit_convs]
    modules = dict(model.named_modules())
    missing = [u.conv for u in units if u.conv not in modules]
    if missing:
        raise ValueError(f"{spec.arch} has no module {missing[0]!r}")
    full = unit_widths(model, units)
    if any(not 1 <= w <= f for w, f in zip(spec.widths, full, strict=True)):
        raise ValueError(f"widths {list(spec.widths)} do not fit the full widths {full}")
    # Works on the meta device too (a skeleton that allocates nothing): only shapes are traced.
    device = next(model.parameters()).device
    example = torch.zeros((1, spec.in_channels, *spec.input_hw), device=device)
    was_training = model.training
    model.eval()
    adapter = DependencyAdapter(model, example, units)
    masks = [torch.arange(f, device="cpu") < w for f, w in zip(full, spec.widths, strict=True)]
    adapter.remove_channels(masks)
    model.train(was_training)
