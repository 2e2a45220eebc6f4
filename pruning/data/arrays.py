"""Numeric arrays (from .npz files and scikit-learn) to `RawData`, with strict checks: the
rules the API checks `.npz` uploads by (`edgeprune.contracts.dataset_rules`)."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from edgeprune.contracts.dataset_rules import (
    DEFAULT_LIMITS,
    NPZ_ARRAYS,
    ArchiveLimits,
    ArrayFacts,
    DatasetRuleError,
    ImageArray,
    MemberScan,
    check_npz_names,
    class_labels,
    not_finite,
    npz_layout,
)
from pruning.data.prepare import labels_to_indices
from pruning.data.samples import Samples, Uint8Arrays
from pruning.data.types import DataError, Inputs, RawData


@contextmanager
def _rules(source: str) -> Iterator[None]:
    try:
        yield
    except DatasetRuleError as exc:
        raise DataError(f"{source}: {exc}") from None


def images_to_nchw(x: np.ndarray, layout: ImageArray, name: str, source: str) -> Inputs:
    """Images read by `layout` (from `npz_layout`) as float32 (N, C, H, W).

    uint8 is taken as 0..255 and scaled to 0..1, a batch at a time (kept as uint8 `Samples`:
    a quarter of the float32 size); other numbers are kept as they are (the per-channel
    normalisation makes the scale irrelevant).
    """
    if layout.axes == "NHW":
        x = x[:, None, :, :]
    elif layout.axes == "NHWC":
        x = x.transpose(0, 3, 1, 2)
    if x.dtype == np.uint8:
        reader = Uint8Arrays(np.ascontiguousarray(x))
        return Samples(reader, reader.size)
    with np.errstate(over="ignore"):  # a value beyond float32's range is refused just below
        tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if not torch.isfinite(tensor).all():
        raise DataError(f"{source}: {not_finite(name)}")
    return tensor


def labels_to_int(y: np.ndarray, name: str, source: str) -> torch.Tensor:
    """Integer labels (whole-number floats are accepted) as int64."""
    with _rules(source):
        class_labels(np.unique(y).tolist(), name, str(y.dtype))
    return torch.from_numpy(y.astype(np.int64))


def arrays_to_raw(
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    source: str,
) -> RawData:
    arrays = {"x": x, "y": y, "x_test": x_test, "y_test": y_test}
    with _rules(source):
        layout = npz_layout({k: ArrayFacts.of(a) for k, a in arrays.items() if a is not None})
    xt = images_to_nchw(x, layout.x, "x", source)
    yt = labels_to_int(y, "y", source)
    xv = yv = None
    if x_test is not None and y_test is not None and layout.x_test is not None:
        xv = images_to_nchw(x_test, layout.x_test, "x_test", source)
        yv = labels_to_int(y_test, "y_test", source)
    y_train, y_eval, classes = labels_to_indices(yt, yv)
    eight_bit = np.asarray(x).dtype == np.uint8
    return RawData(
        x_train=xt,
        y_train=y_train,
        classes=classes,
        x_test=xv,
        y_test=y_eval,
        value_scale=1 / 255 if eight_bit else 1.0,
        # 8-bit arrays are images; float arrays may be anything (sensor windows, spectra).
        kind="images" if eight_bit else "arrays",
    )


def _scan_npz(path: str, source: str, limits: ArchiveLimits) -> None:
    # An .npz is a zip of .npy members: np.savez_compressed turns 300 MB of zeros into 300 kB,
    # and numpy would allocate all of it. Its members pass the archive rules first.
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{source}: not a readable .npz file ({exc})") from None
    scan = MemberScan(Path(path).stat().st_size, limits)
    with _rules(source):
        for info in infos:
            scan.add_zip(info)


def load_npz(path: str, source: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> RawData:
    _scan_npz(path, source, limits)
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            arrays = {k: archive[k] for k in NPZ_ARRAYS if k in names}
    except ValueError as exc:  # object arrays need pickle, which we refuse
        raise DataError(
            f"{source}: unreadable array ({exc}); object arrays are not accepted"
        ) from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{source}: not a readable .npz file ({exc})") from None
    with _rules(source):
        check_npz_names(names)
    return arrays_to_raw(
        arrays["x"], arrays["y"], arrays.get("x_test"), arrays.get("y_test"), source
    )


def load_digits_builtin() -> RawData:
    """scikit-learn's bundled 8×8 digits (no download); values 0..16 scaled to 0..1."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = torch.from_numpy(digits.target.astype(np.int64))
    return RawData(
        x_train=x,
        y_train=y,
        classes=[str(i) for i in range(10)],
        value_scale=1 / 16,
        kind="digits",
    )
