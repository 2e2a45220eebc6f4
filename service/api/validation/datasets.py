"""Inspection of an uploaded edge dataset: sample count, classes and input shape, no torch.

Accepted layouts, by the rules the worker's loaders apply too
(`edgeprune.contracts.dataset_rules`, which both call):

- `.npz` with `x` (N, C, H, W), (N, H, W, C) with C in 1/3, or (N, H, W) for grey images;
  `y` (N,) integer labels (whole-number floats pass); optional `x_test`/`y_test` with the
  same channels (see npz.py).
- `.zip` / `.tar.gz` ImageFolder trees: `class/img.png`, or `train/class/img.png` (with an
  optional `test/` or `val/` split next to it), optionally inside wrapping folders; hidden
  files and `__MACOSX/` are ignored. Every member is scanned before anything is read:
  absolute paths, `..`, links, devices and names used twice are refused, as are archives
  with too many members or a huge declared expanded size.

The layout is read from the member names and one image header (the first training image,
which gives the input shape); the worker decodes every image, so a corrupt image further in
fails the job, with the file named.
"""

from __future__ import annotations

import tarfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from edgeprune.contracts.dataset_rules import (
    DEFAULT_LIMITS,
    TAR_MODE,
    UPLOAD_FORMATS,
    ArchiveLimits,
    ImageFolderLayout,
    MemberScan,
    check_classes,
    check_image_size,
    image_channels,
    image_folder_layout,
    member_parts,
)
from edgeprune.contracts.dataset_rules import dataset_format as _format_of
from service.api.validation.dataset_common import DatasetInfo, invalid, upload_rules
from service.api.validation.npz import inspect_npz

__all__ = ["DatasetInfo", "DatasetLimits", "dataset_format", "inspect_dataset"]

# The operator's limits (EDGEPRUNE_MAX_DATASET_FILES / _BYTES), as the upload route names them.
DatasetLimits = ArchiveLimits


def dataset_format(filename: str) -> str:
    fmt = _format_of(filename)
    if fmt not in UPLOAD_FORMATS:
        raise invalid(f"dataset {filename!r} must be a .npz, .zip or .tar.gz file")
    return fmt


def inspect_dataset(path: Path, fmt: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> DatasetInfo:
    if fmt == "npz":
        return inspect_npz(path, limits)
    if fmt == "zip":
        return _inspect_zip(path, limits)
    return _inspect_tar(path, limits)


def _inspect_zip(path: Path, limits: ArchiveLimits) -> DatasetInfo:
    try:
        with zipfile.ZipFile(path) as zf:
            with upload_rules():
                scan = MemberScan(path.stat().st_size, limits)
                for info in zf.infolist():
                    scan.add_zip(info)
                layout = _layout(scan)
            first = layout.train[0][1]
            member = next(
                i for i in zf.infolist() if not i.is_dir() and member_parts(i.filename) == first
            )
            with zf.open(member) as fh:
                shape = _image_shape(fh, "/".join(first))
    except zipfile.BadZipFile:
        raise invalid("not a valid .zip archive") from None
    return DatasetInfo("zip", len(layout.train), layout.classes, shape)


def _inspect_tar(path: Path, limits: ArchiveLimits) -> DatasetInfo:
    try:
        # Two passes: names and sizes first (refusing before anything is read), then only
        # the one image whose size we need.
        with tarfile.open(path, mode=TAR_MODE) as tf, upload_rules():
            scan = MemberScan(path.stat().st_size, limits)
            for member in _members(tf):
                scan.add_tar(member)
            layout = _layout(scan)
        first = layout.train[0][1]
        with tarfile.open(path, mode=TAR_MODE) as tf:
            member = next(m for m in _members(tf) if m.isfile() and member_parts(m.name) == first)
            fh = tf.extractfile(member)
            if fh is None:  # pragma: no cover - a regular file always has a reader
                raise invalid(f"cannot read {'/'.join(first)!r} from the archive")
            with fh:
                shape = _image_shape(fh, "/".join(first))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise invalid(f"not a valid .tar.gz archive: {exc}") from None
    return DatasetInfo("tar.gz", len(layout.train), layout.classes, shape)


def _members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    # One member at a time, so the scan stops at the first refused one.
    while (member := tf.next()) is not None:
        yield member


def _layout(scan: MemberScan) -> ImageFolderLayout:
    layout = image_folder_layout(scan.listing)
    test_samples = None if layout.test is None else len(layout.test)
    check_classes(layout.classes, layout.train_counts(), test_samples)
    return layout


def _image_shape(fh: IO[bytes], name: str) -> list[int]:
    from PIL import Image, UnidentifiedImageError

    try:
        # Reads the header only. The pixel limit is the rules' (Pillow's own warning is
        # silenced; past twice that, Pillow refuses by itself).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fh) as img:
                width, height, mode = img.width, img.height, img.mode
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise invalid(f"unreadable image {name}: {exc}") from None
    with upload_rules():
        check_image_size(width, height, name)
    return [image_channels(mode), int(height), int(width)]
