"""Run the installed model on raw samples, fed the way its manifest and metadata say.

Every model EdgePrune exports carries its preprocessing in the ONNX file (`edgeprune.*`
metadata): per channel c, x = (value · value_scale − mean[c]) / std[c], NCHW, and the class
labels; the manifest a device installed carries the same preprocessing. A device that has
raw values (8-bit pixels, a sensor's counts) needs nothing else.

Which description is used: the installed manifest's when it has one (that is what the
server promoted), otherwise the model file's own metadata (`--model`, older servers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from .errors import ConfigError
from .manifest import Manifest

# The keys pruning.export.metadata writes (the edge room never imports the engine).
PREFIX = "edgeprune."


# The only input layout the engine exports; anything else is refused, not guessed at.
LAYOUT = "NCHW"


@dataclass(frozen=True)
class Preprocessing:
    input_shape: tuple[int, int, int]  # C, H, W
    mean: np.ndarray
    std: np.ndarray
    value_scale: float
    classes: list[str]

    @property
    def size(self) -> tuple[int, int]:
        return self.input_shape[1], self.input_shape[2]

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Preprocessing | None:
        """The manifest's description, or None when it lacks one (an older server)."""
        found = manifest.preprocessing
        if not found or not manifest.input_shape or not manifest.classes:
            return None
        try:
            _check_layout(found.get("layout", LAYOUT))
            shape = tuple(int(d) for d in manifest.input_shape)[-3:]
            return cls(
                input_shape=(shape[0], shape[1], shape[2]),
                mean=np.asarray(found["mean"], dtype=np.float32),
                std=np.asarray(found["std"], dtype=np.float32),
                value_scale=float(found["value_scale"]),
                classes=list(manifest.classes),
            )
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise ConfigError(f"the manifest's preprocessing is malformed ({exc})") from None

    @classmethod
    def from_model(cls, session: ort.InferenceSession) -> Preprocessing:
        meta = session.get_modelmeta().custom_metadata_map
        try:
            values: dict[str, Any] = {
                key[len(PREFIX) :]: json.loads(value)
                for key, value in meta.items()
                if key.startswith(PREFIX) and key[len(PREFIX) :] in _NEEDED
            }
            _check_layout(meta.get(PREFIX + "input_layout", LAYOUT))
            shape = tuple(int(d) for d in values["input_shape"])
            return cls(
                input_shape=(shape[0], shape[1], shape[2]),
                mean=np.asarray(values["mean"], dtype=np.float32),
                std=np.asarray(values["std"], dtype=np.float32),
                value_scale=float(values["value_scale"]),
                classes=[str(c) for c in values["classes"]],
            )
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise ConfigError(
                f"the model does not describe its input ({exc}); export it with EdgePrune "
                "(any version that writes edgeprune.* metadata)"
            ) from None

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """(N, C, H, W), (N, H, W, C), (N, H, W) for one channel, or one sample of those."""
        c, h, w = self.input_shape
        x = np.asarray(raw, dtype=np.float32)
        if x.ndim in (2, 3) and x.shape[-2:] == (h, w) and (x.ndim == 2 or x.shape[0] == c):
            x = x[None]  # one sample
        elif x.ndim == 3 and x.shape[-1] == c and x.shape[:2] == (h, w):
            x = x[None]
        if x.ndim == 3 and c == 1:
            x = x[:, None]
        if x.ndim == 4 and x.shape[1:] != (c, h, w) and x.shape[1:] == (h, w, c):
            x = x.transpose(0, 3, 1, 2)
        if x.ndim != 4 or x.shape[1:] != (c, h, w):
            raise ConfigError(
                f"samples of shape {tuple(np.shape(raw))} do not fit the model's input "
                f"{c}×{h}×{w} (resize them first)"
            )
        mean = self.mean.reshape(1, c, 1, 1)
        std = self.std.reshape(1, c, 1, 1)
        return np.ascontiguousarray((x * self.value_scale - mean) / std, dtype=np.float32)


_NEEDED = ("input_shape", "mean", "std", "value_scale", "classes")


def _check_layout(layout: str) -> None:
    if layout != LAYOUT:
        raise ConfigError(f"the model takes {layout} input; this client feeds {LAYOUT} only")


@dataclass(frozen=True)
class Prediction:
    label: str
    index: int
    probability: float
    top: list[tuple[str, float]]


def open_model(model: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def predict(
    model: Path, raw: np.ndarray, top: int = 3, *, prep: Preprocessing | None = None
) -> list[Prediction]:
    """Top-`top` labels of `raw` samples; `prep` defaults to the model's own metadata."""
    session = open_model(model)
    prep = prep or Preprocessing.from_model(session)
    return classify(session, prep.apply(raw), prep.classes, top)


def classify(
    session: ort.InferenceSession, x: np.ndarray, classes: list[str], top: int = 3
) -> list[Prediction]:
    """Top-`top` labels of preprocessed (N, C, H, W) input."""
    feed = {session.get_inputs()[0].name: x}
    logits = np.asarray(session.run(None, feed)[0], dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)
    results = []
    for row in probabilities:
        order = np.argsort(-row)[: max(1, top)]
        best = int(order[0])
        results.append(
            Prediction(
                label=classes[best],
                index=best,
                probability=float(row[best]),
                top=[(classes[int(i)], float(row[i])) for i in order],
            )
        )
    return results
