"""A model built from a checkpoint: from the structure stored in the file, or, for a plain
state dict, from what its weights say about input channels, classes and widths."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from pruning.checkpoints.errors import CheckpointError, CheckpointMismatch, LoadReport
from pruning.checkpoints.files import read_checkpoint
from pruning.checkpoints.fitting import check_fits, load_into, skeleton
from pruning.models.registry import ModelSpec, build_model
from pruning.network.units import PrunableModel


def load_model(
    path: str | os.PathLike[str],
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
    width_mult: float | None = None,
) -> tuple[nn.Module, ModelSpec, LoadReport]:
    """Build the checkpoint's model and load its weights.

    The structure stored in the file is used when present; the arguments override it (a
    different `num_classes` re-initialises the head). A plain state dict needs `arch`; its
    input channels, class count, width multiplier and unit widths are read from the weights.
    """
    state, stored = read_checkpoint(path)
    return model_from_state(
        state,
        stored,
        name=Path(path).name,
        arch=arch,
        num_classes=num_classes,
        in_channels=in_channels,
        width_mult=width_mult,
    )


def model_from_state(
    state: dict[str, torch.Tensor],
    stored: ModelSpec | None,
    *,
    name: str,
    arch: str | None = None,
    num_classes: int | None = None,
    in_channels: int | None = None,
    width_mult: float | None = None,
) -> tuple[nn.Module, ModelSpec, LoadReport]:
    """`load_model` for what `read_checkpoint` returned (`name`: the file's, for messages)."""
    if stored is not None:
        if arch is not None and arch != stored.arch:
            raise CheckpointMismatch(f"the checkpoint holds a {stored.arch}, not a {arch}")
        spec = replace(
            stored,
            in_channels=in_channels if in_channels is not None else stored.in_channels,
            num_classes=num_classes if num_classes is not None else stored.num_classes,
            width_mult=width_mult if width_mult is not None else stored.width_mult,
        )
    elif arch is None:
        raise CheckpointError(f"{name} is a plain state dict: the architecture (arch) is required")
    else:
        spec = infer_spec(
            state, arch, num_classes=num_classes, in_channels=in_channels, width_mult=width_mult
        )
    model = build_model(spec)
    report = load_into(model, state)
    return model, spec, report


def infer_spec(
    state: dict[str, torch.Tensor],
    arch: str,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    width_mult: float | None = None,
) -> ModelSpec:
    """A spec for a plain state dict of `arch`, with what the arguments leave open read from
    the weights. Falls back to the defaults where a shape is absent; `load_into` then reports
    any mismatch."""
    reference = skeleton(ModelSpec(arch))
    own = reference.state_dict()
    first_conv = next((n for n, m in reference.named_modules() if isinstance(m, nn.Conv2d)), None)
    stem = state.get(f"{first_conv}.weight") if first_conv else None
    # Only well-formed shapes are read; anything else keeps the default and is then
    # reported by the fit check below, key by key.
    stem_ok = stem is not None and stem.dim() == 4 and min(stem.shape[:2]) >= 1
    if in_channels is None:
        in_channels = int(stem.shape[1]) if stem is not None and stem_ok else 3
    if width_mult is None:
        width_mult = 1.0
        if stem is not None and stem_ok and first_conv is not None:
            width_mult = int(stem.shape[0]) / int(own[f"{first_conv}.weight"].shape[0])
    head = getattr(reference, "head_name", None)
    head_weight = state.get(f"{head}.weight") if head else None
    if num_classes is None:
        head_ok = head_weight is not None and head_weight.dim() >= 1 and head_weight.shape[0] >= 1
        num_classes = int(head_weight.shape[0]) if head_weight is not None and head_ok else 10
    spec = ModelSpec(arch, in_channels=in_channels, num_classes=num_classes, width_mult=width_mult)
    model = skeleton(spec)
    units = model.prunable_units() if isinstance(model, PrunableModel) else []
    shapes = [state.get(f"{u.conv}.weight") for u in units]
    if units and all(s is not None and s.dim() >= 1 for s in shapes):
        widths = tuple(int(s.shape[0]) for s in shapes if s is not None)
        default = tuple(model.state_dict()[f"{u.conv}.weight"].shape[0] for u in units)
        if widths != default:
            spec = ModelSpec(arch, in_channels, num_classes, width_mult, widths)
    check_fits(spec, state)
    return spec
