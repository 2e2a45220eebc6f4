"""The files `edge-client predict` takes, as one preprocessed batch with a name per sample.

`.npy` holds raw samples directly; `.npz` its `x` array (or its only array); image files
(PNG, JPEG, ...) are decoded with Pillow (see images.py). Every kind arrives in its source's
own scale (8-bit pixels, a sensor's counts) and gets the same preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .images import is_image, load_images
from .predict import Preprocessing


@dataclass(frozen=True)
class Samples:
    x: np.ndarray  # (N, C, H, W) float32, preprocessed: ready for the model
    names: list[str]  # one per sample: the file, with [i] for arrays of several
    notes: list[str]  # what was done to the input that the user should know (resizes)


def read_array(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as data:
                keys = list(data.keys())
                if "x" not in keys and len(keys) != 1:
                    raise ConfigError(f"{path.name}: expected an array named x, found {keys}")
                return np.asarray(data["x" if "x" in keys else keys[0]])
        return np.asarray(np.load(path, allow_pickle=False))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{path} is not a .npy/.npz array: {exc}") from None


def read_samples(paths: list[Path], prep: Preprocessing) -> Samples:
    """Every file's samples, preprocessed; images are decoded to the model's channels and
    resized to its input size where they differ."""
    batches: list[np.ndarray] = []
    names: list[str] = []
    notes: list[str] = []
    images = [p for p in paths if is_image(p)]
    for path in paths:
        if is_image(path):
            continue
        x = prep.apply(read_array(path))
        batches.append(x)
        names += [f"{path.name}[{i}]" for i in range(len(x))] if len(x) > 1 else [path.name]
    if images:  # decoded together: one batch through the model
        pixels, resized = load_images(images, prep.input_shape[0], prep.size)
        batches.append(prep.apply(pixels))
        names += [p.name for p in images]
        notes += resized
    return Samples(np.concatenate(batches), names, notes)
