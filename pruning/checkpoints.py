"""Reading and writing model checkpoints without ever executing code from the file.

Formats: `.safetensors` (structure JSON in the string metadata under "edgeprune.structure")
and `.pt`/`.pth` read with `torch.load(weights_only=True)`, holding either a plain state dict
or our own `{"state_dict": ..., "structure": ModelSpec.to_json()}`.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import nn

from pruning.models.registry import ModelSpec, build_model
from pruning.network.units import PrunableModel

STRUCTURE_KEY = "edgeprune.structure"
_TORCH_SUFFIXES = (".pt", ".pth")
_MAX_LISTED = 5  # key names quoted per category in a mismatch message
_MAX_MESSAGE = 900
_BN_COUNTER = ".num_batches_tracked"


class CheckpointError(ValueError):
    """The file is not a checkpoint we can read (one-line reason)."""


class CheckpointMismatch(CheckpointError):
    """The checkpoint's tensors do not fit the model."""


@dataclass(frozen=True)
class LoadReport:
    loaded_keys: int
    head_reinitialised: bool = False
    skipped_keys: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------
# Writing


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, spec: ModelSpec) -> None:
    """Save the model's state dict and its structure; the format follows the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix != ".safetensors" and suffix not in _TORCH_SUFFIXES:
        raise CheckpointError(
            f"unsupported checkpoint suffix {path.suffix!r}; use .safetensors, .pt or .pth"
        )
    # Cloned so tensors sharing storage (tied weights, views) save independently.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".safetensors":
            save_safetensors(state, tmp_name, metadata={STRUCTURE_KEY: json.dumps(spec.to_json())})
        else:
            torch.save({"state_dict": state, "structure": spec.to_json()}, tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# Reading


def read_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, torch.Tensor], ModelSpec | None]:
    """The file's tensors and, when it carries one, the structure to rebuild the model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path.name} does not exist or is not a file")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return _read_safetensors(path)
    if suffix in _TORCH_SUFFIXES:
        return _read_torch(path)
    # Unknown suffix (e.g. a content-addressed blob): torch files are zip archives.
    with path.open("rb") as f:
        magic = f.read(4)
    return _read_torch(path) if magic == b"PK\x03\x04" else _read_safetensors(path)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], ModelSpec | None]:
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        state = load_safetensors(str(path), device="cpu")
    except Exception as exc:  # the Rust reader raises its own types for every kind of damage
        raise CheckpointError(
            f"{path.name} is not a readable safetensors file: {_first_line(exc)}"
        ) from None
    raw = metadata.get(STRUCTURE_KEY)
    spec = None
    if raw is not None:
        try:
            data = json.loads(raw)
        except ValueError:
            raise CheckpointError(f"{path.name}: the structure metadata is not JSON") from None
        spec = _parse_structure(data, path)
    return _checked(state, spec, path)


def _read_torch(path: Path) -> tuple[dict[str, torch.Tensor], ModelSpec | None]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():
            raise CheckpointError(
                f"{path.name} is not a plain tensor checkpoint: it holds Python objects that "
                "would run code when loaded (save a state_dict, not a pickled model)"
            ) from None
        raise CheckpointError(
            f"{path.name} is not a torch checkpoint: {_first_line(exc)}"
        ) from None
    except Exception as exc:  # truncated zips, random bytes: torch raises many types
        raise CheckpointError(
            f"{path.name} is not a readable torch checkpoint: {_first_line(exc)}"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path.name} holds a {type(obj).__name__}, not a state dict")
    spec = None
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):
        if obj.get("structure") is not None:
            spec = _parse_structure(obj["structure"], path)
        obj = obj["state_dict"]
    return _checked(obj, spec, path)


def _checked(
    obj: dict[Any, Any], spec: ModelSpec | None, path: Path
) -> tuple[dict[str, torch.Tensor], ModelSpec | None]:
    state = _check_state(obj, path)
    if spec is not None:
        # The structure record decides the size of the model built from it: a record that
        # does not describe these very tensors (say widths of a million) is refused before
        # anything is allocated for it.
        check_fits(spec, state)
    return state, spec


def _check_state(obj: dict[Any, Any], path: Path) -> dict[str, torch.Tensor]:
    if not obj:
        raise CheckpointError(f"{path.name} holds no tensors")
    for key, value in obj.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path.name}: state-dict key {key!r} is not a string")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path.name}: {key!r} holds a {type(value).__name__}, not a tensor"
            )
        _check_tensor(key, value, path)
    state: dict[str, torch.Tensor] = dict(obj)
    # Checkpoints saved from DataParallel/DDP wrappers prefix every key with "module.".
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _check_tensor(key: str, value: torch.Tensor, path: Path) -> None:
    # A model's weights are dense real numbers. Sparse, quantised or complex tensors would be
    # silently converted (or fail deep inside training), and NaN/inf weights make every
    # saliency NaN: refuse them here, with the key named.
    if value.layout != torch.strided or value.is_quantized:
        raise CheckpointError(f"{path.name}: {key!r} is not a dense tensor ({value.layout})")
    if value.is_complex():
        raise CheckpointError(f"{path.name}: {key!r} holds complex numbers ({value.dtype})")
    if value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise CheckpointError(f"{path.name}: {key!r} contains NaN or infinite values")


def _parse_structure(data: Any, path: Path) -> ModelSpec:
    try:
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        return ModelSpec.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path.name}: invalid structure record: {_first_line(exc)}"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line[:200]


# ---------------------------------------------------------------------------------------------
# Loading into a model


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


def _skeleton(spec: ModelSpec) -> nn.Module:
    """`spec` built on the meta device: shapes without storage, so no structure, however
    large it claims to be, allocates memory. An unbuildable spec is a CheckpointMismatch."""
    try:
        with torch.device("meta"):
            return build_model(spec)
    except (ValueError, TypeError, RuntimeError) as exc:  # unknown arch, bad widths or sizes
        raise CheckpointMismatch(
            f"no {spec.arch} can hold this checkpoint: {_first_line(exc)}"
        ) from None


def check_fits(spec: ModelSpec, state_dict: dict[str, torch.Tensor]) -> None:
    """CheckpointMismatch unless `state_dict` loads into a model built from `spec` (a head
    for another class count is allowed, as in `load_into`); allocates nothing."""
    _fit(_skeleton(spec), state_dict, reinit_head_for_classes=True)


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
        raise CheckpointError(
            f"{Path(path).name} is a plain state dict: the architecture (arch) is required"
        )
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
    reference = _skeleton(ModelSpec(arch))
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
    model = _skeleton(spec)
    units = model.prunable_units() if isinstance(model, PrunableModel) else []
    shapes = [state.get(f"{u.conv}.weight") for u in units]
    if units and all(s is not None and s.dim() >= 1 for s in shapes):
        widths = tuple(int(s.shape[0]) for s in shapes if s is not None)
        default = tuple(model.state_dict()[f"{u.conv}.weight"].shape[0] for u in units)
        if widths != default:
            spec = ModelSpec(arch, in_channels, num_classes, width_mult, widths)
    check_fits(spec, state)
    return spec
