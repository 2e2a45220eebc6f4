"""Numeric arrays (from .npz files and scikit-learn) to `RawData`, with strict checks."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from pruning.data.archives import check_totals
from pruning.data.prepare import labels_to_indices
from pruning.data.samples import Samples, Uint8Arrays
from pruning.data.types import DataError, Inputs, RawData

_IMAGE_CHANNELS = (1, 3)


def images_to_nchw(x: np.ndarray, name: str, source: str) -> Inputs:
    """(N,H,W), (N,H,W,C) with C in {1,3} or (N,C,H,W) numbers → float32 (N,C,H,W).

    uint8 is taken as 0..255 and scaled to 0..1, a batch at a time (kept as uint8 `Samples`:
    a quarter of the float32 size); other numbers are kept as they are (the per-channel
    normalisation makes the scale irrelevant).
    """
    if x.dtype.kind not in "uif":
        raise DataError(f"{source}: {name} has dtype {x.dtype}, not numbers")
    if x.ndim == 3:
        x = x[:, None, :, :]
    elif x.ndim == 4:
        # Channels-last when the last axis looks like channels and the second does not.
        if x.shape[3] in _IMAGE_CHANNELS and x.shape[1] not in _IMAGE_CHANNELS:
            x = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(
            f"{source}: {name} has shape {x.shape}; expected (N,H,W), (N,H,W,C) or (N,C,H,W)"
        )
    if x.shape[0] == 0 or min(x.shape[1:]) < 1:
        raise DataError(f"{source}: {name} is empty (shape {x.shape})")
    if x.dtype == np.uint8:
        reader = Uint8Arrays(np.ascontiguousarray(x))
        return Samples(reader, reader.size)
    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if not torch.isfinite(tensor).all():
        raise DataError(f"{source}: {name} contains NaN or infinite values")
    return tensor


def labels_to_int(y: np.ndarray, name: str, source: str) -> torch.Tensor:
    """1-D integer labels (floats are accepted only when they are whole numbers)."""
    if y.ndim != 1:
        raise DataError(f"{source}: {name} has shape {y.shape}; expected one label per sample")
    if y.dtype.kind in "iu":
        return torch.from_numpy(y.astype(np.int64))
    if y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all():
        return torch.from_numpy(y.astype(np.int64))
    raise DataError(f"{source}: {name} must hold integer class labels, got dtype {y.dtype}")


def arrays_to_raw(
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    source: str,
) -> RawData:
    if (x_test is None) != (y_test is None):
        raise DataError(f"{source}: x_test and y_test must be given together")
    xt = images_to_nchw(x, "x", source)
    yt = labels_to_int(y, "y", source)
    if len(xt) != len(yt):
        raise DataError(f"{source}: x has {len(xt)} samples but y has {len(yt)} labels")
    xv = yv = None
    if x_test is not None and y_test is not None:
        xv = images_to_nchw(x_test, "x_test", source)
        yv = labels_to_int(y_test, "y_test", source)
        if len(xv) != len(yv):
            raise DataError(
                f"{source}: x_test has {len(xv)} samples but y_test has {len(yv)} labels"
            )
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


def _check_npz_expansion(path: str, source: str) -> None:
    # An .npz is a zip of .npy members: np.savez_compressed turns 300 MB of zeros into 300 kB,
    # and numpy would allocate all of it. Bound the declared sizes as for any archive.
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{source}: not a readable .npz file ({exc})") from None
    total = sum(i.file_size for i in infos)
    check_totals(len(infos), total, Path(path).stat().st_size, source)


def load_npz(path: str, source: str) -> RawData:
    _check_npz_expansion(path, source)
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            missing = {"x", "y"} - names
            if missing:
                raise DataError(
                    f"{source}: missing array(s) {', '.join(sorted(missing))}; "
                    f"found {sorted(names)}"
                )
            arrays = {k: archive[k] for k in ("x", "y", "x_test", "y_test") if k in names}
    except DataError:
        raise
    except ValueError as exc:  # object arrays need pickle, which we refuse
        raise DataError(
            f"{source}: unreadable array ({exc}); object arrays are not accepted"
        ) from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{source}: not a readable .npz file ({exc})") from None
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
