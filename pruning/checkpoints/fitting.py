"""Whether a state dict fits a model, key by key and shape by shape, and loading it: a head
for another class count keeps its fresh init; a mismatch names the keys."""

from __future__ import annotations

import torch
from torch import nn

from pruning.checkpoints.errors import CheckpointMismatch, LoadReport, first_line
from pruning.models.registry import ModelSpec, build_model

_MAX_LISTED = 5  # key names quoted per category in a mismatch message
_MAX_MESSAGE = 900
_BN_COUNTER = ".num_batches_tracked"


def load_into(
    model: nn.Module, state_dict: dict[str, torch.Tensor], *, reinit_head_for_classes: bool = True
) -> LoadReport:
    """Strictly load `state_dict`; a head whose class count differs keeps its fresh init.

    BN `num_batches_tracked` counters may be absent (checkpoints from PyTorch < 0.4.1, such
    as torchvision's original ResNet weights): they are bookkeeping, and keep the model's value.
    """
    skipped = _fit(model, state_dict, reinit_head_for_classes=reinit_head_for_classes)
    kept = {k: v for k, v in state_dict.items() if k not in skipped}
    # Every key and shape was checked by _fit; strict=False only lets the skipped head keys
    # and absent BN counters keep the model's own values.
    model.load_state_dict(kept, strict=False)
    return LoadReport(
        loaded_keys=len(kept), head_reinitialised=bool(skipped), skipped_keys=tuple(skipped)
    )


def _fit(
    model: nn.Module, state_dict: dict[str, torch.Tensor], *, reinit_head_for_classes: bool
) -> list[str]:
    """The head keys to skip, or CheckpointMismatch; reads only shapes (meta models work)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict and not k.endswith(_BN_COUNTER)]
    unexpected = [k for k in state_dict if k not in own]
    misshaped = [k for k in own if k in state_dict and own[k].shape != state_dict[k].shape]
    skipped: list[str] = []
    if misshaped and not missing and not unexpected and reinit_head_for_classes:
        head = getattr(model, "head_name", None)
        if head and all(_is_class_dim_change(k, head, own[k], state_dict[k]) for k in misshaped):
            skipped = misshaped
            misshaped = []
    if missing or unexpected or misshaped:
        raise CheckpointMismatch(
            _mismatch_message(model, own, state_dict, missing, unexpected, misshaped)
        )
    return skipped


def skeleton(spec: ModelSpec) -> nn.Module:
    """`spec` built on the meta device: shapes without storage, so no structure, however
    large it claims to be, allocates memory. An unbuildable spec is a CheckpointMismatch."""
    try:
        with torch.device("meta"):
            return build_model(spec)
    except (ValueError, TypeError, RuntimeError) as exc:  # unknown arch, bad widths or sizes
        raise CheckpointMismatch(
            f"no {spec.arch} can hold this checkpoint: {first_line(exc)}"
        ) from None


def check_fits(spec: ModelSpec, state_dict: dict[str, torch.Tensor]) -> None:
    """CheckpointMismatch unless `state_dict` loads into a model built from `spec` (a head
    for another class count is allowed, as in `load_into`); allocates nothing."""
    _fit(skeleton(spec), state_dict, reinit_head_for_classes=True)


def _is_class_dim_change(key: str, head: str, own: torch.Tensor, theirs: torch.Tensor) -> bool:
    if key not in (f"{head}.weight", f"{head}.bias") or own.dim() != theirs.dim():
        return False
    return own.dim() >= 1 and own.shape[1:] == theirs.shape[1:]


def _mismatch_message(
    model: nn.Module,
    own: dict[str, torch.Tensor],
    theirs: dict[str, torch.Tensor],
    missing: list[str],
    unexpected: list[str],
    misshaped: list[str],
) -> str:
    def listing(keys: list[str]) -> str:
        shown = ", ".join(keys[:_MAX_LISTED])
        return shown + (f", … (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({listing(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({listing(unexpected)})")
    if misshaped:
        shapes = [
            f"{k}: checkpoint {tuple(theirs[k].shape)} vs model {tuple(own[k].shape)}"
            for k in misshaped
        ]
        parts.append(f"{len(misshaped)} mis-shaped keys ({listing(shapes)})")
    message = f"checkpoint does not fit {type(model).__name__}: " + "; ".join(parts)
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"
