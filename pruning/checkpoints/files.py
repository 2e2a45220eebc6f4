"""Reading and writing checkpoint files without ever executing code from the file.

Formats: `.safetensors` (structure JSON in the string metadata under "edgeprune.structure")
and `.pt`/`.pth` read with `torch.load(weights_only=True)`, holding either a plain state dict
or our own `{"state_dict": ..., "structure": ModelSpec.to_json()}`.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file as load_safetensors
from safetensors.torch import save_file as save_safetensors
from torch import nn

from pruning.checkpoints.errors import CheckpointError, first_line
from pruning.checkpoints.fitting import check_fits
from pruning.models.registry import ModelSpec

STRUCTURE_KEY = "edgeprune.structure"
_TORCH_SUFFIXES = (".pt", ".pth")


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
            f"{path.name} is not a readable safetensors file: {first_line(exc)}"
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
        raise CheckpointError(f"{path.name} is not a torch checkpoint: {first_line(exc)}") from None
    except Exception as exc:  # truncated zips, random bytes: torch raises many types
        raise CheckpointError(
            f"{path.name} is not a readable torch checkpoint: {first_line(exc)}"
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
        raise CheckpointError(f"{path.name}: invalid structure record: {first_line(exc)}") from None
