"""What a device needs to feed an exported model, written into the ONNX file itself
(`metadata_props`), so that no integrator has to read our code to find out."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import onnx

# Prefix of every key we write: other tools' metadata is left alone.
PREFIX = "edgeprune."


def edgeprune_version() -> str:
    try:
        return version("edgeprune")
    except PackageNotFoundError:
        return "unknown"


def model_metadata(
    *,
    input_shape: tuple[int, int, int],
    mean: list[float],
    std: list[float],
    value_scale: float,
    classes: list[str],
    flops: int,
    params: int,
    arch: str,
    variant: str,
    source_job: str | None = None,
) -> dict[str, str]:
    """String values, JSON where structured. A device computes, per channel c,
    x = (value · value_scale − mean[c]) / std[c], in NCHW order, and reads the logits'
    argmax as an index into `classes`."""
    values: dict[str, Any] = {
        "input_name": "input",
        "output_name": "logits",
        "input_layout": "NCHW",
        "input_shape": list(input_shape),
        "mean": mean,
        "std": std,
        "value_scale": value_scale,
        "preprocessing": "x = (value * value_scale - mean[c]) / std[c] per channel c",
        "classes": classes,
        "flops": flops,
        "params": params,
        "arch": arch,
        "variant": variant,
        "source_job": source_job or "",
        "version": edgeprune_version(),
    }
    return {
        PREFIX + key: value if isinstance(value, str) else json.dumps(value)
        for key, value in values.items()
    }


def write_metadata(path: Path, metadata: dict[str, str]) -> None:
    """Set the keys on the model at `path` in place (other entries are kept)."""
    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key not in metadata]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    tmp = path.with_suffix(path.suffix + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)


def read_metadata(path: Path) -> dict[str, Any]:
    """Our keys of the model at `path`, without the prefix, JSON decoded."""
    model = onnx.load(str(path), load_external_data=False)
    found: dict[str, Any] = {}
    for prop in model.metadata_props:
        if prop.key.startswith(PREFIX):
            key = prop.key[len(PREFIX) :]
            try:
                found[key] = json.loads(prop.value)
            except json.JSONDecodeError:
                found[key] = prop.value
    return found
