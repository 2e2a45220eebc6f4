"""Inspection of an uploaded `.npz`: `x` images, `y` integer labels, optional `x_test` and
`y_test`, checked by the rules the engine's loader applies (`edgeprune.contracts.dataset_rules`).

Loaded with `allow_pickle=False`: an npz can never execute code here.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from edgeprune.contracts.dataset_rules import (
    NPZ_ARRAYS,
    ArchiveLimits,
    ArrayFacts,
    MemberScan,
    check_classes,
    check_npz_names,
    class_labels,
    not_finite,
    npz_layout,
)
from service.api.validation.dataset_common import DatasetInfo, invalid, upload_rules

# Values checked per step, so the float32 copy and the boolean array stay small.
_CHUNK = 4096


def inspect_npz(path: Path, limits: ArchiveLimits) -> DatasetInfo:
    # An npz is a zip of .npy members: bound its declared expansion before numpy reads it.
    try:
        with zipfile.ZipFile(path) as zf, upload_rules():
            scan = MemberScan(path.stat().st_size, limits)
            for info in zf.infolist():
                scan.add_zip(info)
    except zipfile.BadZipFile:
        raise invalid("not a valid .npz archive") from None
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            arrays = {k: npz[k] for k in NPZ_ARRAYS if k in names}
    except ValueError as exc:  # numpy's answer to pickled object arrays and corrupt members
        raise invalid(f"unreadable array ({exc}); object arrays are not accepted") from None
    with upload_rules():
        check_npz_names(names)
        layout = npz_layout({k: ArrayFacts.of(a) for k, a in arrays.items()})
        for name in ("x", "x_test"):
            if name in arrays:
                _check_finite(arrays[name], name)
        values, counts = np.unique(arrays["y"], return_counts=True)
        labels = class_labels(values.tolist(), "y", str(values.dtype))
        train = dict(zip(labels, counts.tolist(), strict=True))
        test: list[int] = []
        if "y_test" in arrays:
            y_test = arrays["y_test"]
            test = class_labels(np.unique(y_test).tolist(), "y_test", str(y_test.dtype))
        # Classes are the labels of both splits, as the engine maps them.
        classes = sorted(set(train) | set(test))
        test_samples = len(arrays["y_test"]) if "y_test" in arrays else None
        names = [str(v) for v in classes]
        check_classes(names, [train.get(v, 0) for v in classes], test_samples)
    return DatasetInfo("npz", int(arrays["y"].shape[0]), names, list(layout.x.sample_shape))


def _check_finite(x: np.ndarray, name: str) -> None:
    # The engine trains on float32: a float64 value beyond float32's range is infinite there.
    if x.dtype.kind != "f":
        return
    for start in range(0, x.shape[0], _CHUNK):
        with np.errstate(over="ignore"):
            chunk = x[start : start + _CHUNK].astype(np.float32)
        if not np.isfinite(chunk).all():
            raise not_finite(name)
