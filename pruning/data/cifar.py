"""CIFAR-10 in its python format: data_batch_1..5, test_batch, batches.meta.

These files are pickles (dicts with bytes keys, written by Python 2). They are read with
`pickle` ONLY because this is that known format, and through an unpickler that resolves no
global except the numpy array constructors, so a crafted file cannot run code.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pruning.data.samples import Samples, Uint8Arrays
from pruning.data.types import DataError, RawData

_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = "test_batch"
_META = "batches.meta"
FOLDER = "cifar-10-batches-py"


def _numpy_globals() -> dict[tuple[str, str], Any]:
    from numpy._core import multiarray, numeric

    allowed: dict[tuple[str, str], Any] = {}
    for package in ("numpy.core", "numpy._core"):  # numpy 1 pickles name numpy.core
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # type: ignore[attr-defined]
    # Python 3 protocol-2 pickles spell bytes as _codecs.encode(text, "latin1"): pure data.
    allowed[("_codecs", "encode")] = codecs.encode
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    return allowed


class _ArrayOnlyUnpickler(pickle.Unpickler):
    _allowed = _numpy_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None


def find_cifar_root(path: Path) -> Path | None:
    """The folder holding the batches: `path` itself or its `cifar-10-batches-py` child."""
    for candidate in (path, path / FOLDER):
        if (candidate / _META).is_file() and (candidate / _TRAIN[0]).is_file():
            return candidate
    return None


def _read(path: Path) -> dict[Any, Any]:
    try:
        with path.open("rb") as f:
            obj = _ArrayOnlyUnpickler(f, encoding="bytes").load()
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        OSError,
    ) as exc:
        raise DataError(f"CIFAR file {path.name} is not readable: {exc}") from None
    if not isinstance(obj, dict):
        raise DataError(f"CIFAR file {path.name} holds a {type(obj).__name__}, not a dict")
    # Python 2 pickles have bytes keys; accept str keys from files rewritten in Python 3.
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _batch(path: Path) -> tuple[np.ndarray, torch.Tensor]:
    record = _read(path)
    try:
        data = np.asarray(record["data"], dtype=np.uint8)
        labels = np.asarray(record["labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"CIFAR file {path.name} lacks valid data/labels: {exc}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise DataError(
            f"CIFAR file {path.name}: data shape {data.shape} with {len(labels)} labels"
        )
    return data.reshape(-1, 3, 32, 32), torch.from_numpy(labels)


def load_cifar10(root: Path) -> RawData:
    meta = _read(root / _META)
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get("label_names", [])]
    train = [_batch(root / name) for name in _TRAIN if (root / name).is_file()]
    if not train:
        raise DataError(f"CIFAR folder {root.name} has no training batches")
    if not (root / _TEST).is_file():
        raise DataError(f"CIFAR folder {root.name} has no {_TEST}")
    x_test, y_test = _batch(root / _TEST)
    # Kept as uint8 (150 MB rather than 600 MB as float32), converted a batch at a time.
    x_train = Samples(Uint8Arrays(np.concatenate([x for x, _ in train])), (32, 32))
    y_train = torch.cat([y for _, y in train])
    classes = names or [str(i) for i in range(int(y_train.max()) + 1)]
    top = int(max(y_train.max(), y_test.max()))
    if min(int(y_train.min()), int(y_test.min())) < 0 or top >= len(classes):
        raise DataError(f"CIFAR labels run outside 0..{len(classes) - 1}")
    return RawData(x_train, y_train, classes, Samples(Uint8Arrays(x_test), (32, 32)), y_test)
