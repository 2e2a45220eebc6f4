"""Inspection of an uploaded edge dataset: sample count, classes and input shape, no torch.

Accepted layouts (the worker's loaders read the same ones):

- `.npz` with `x` (N, C, H, W), (N, H, W, C) with C in 1/3, or (N, H, W) for grey images;
  `y` (N,) non-negative integer labels (whole-number floats pass); optional `x_test`/`y_test`
  of the same sample shape.
  Loaded with `allow_pickle=False`: an npz can never execute code here.
- `.zip` / `.tar.gz` ImageFolder trees: `class/img.png`, or `train/class/img.png` (with an
  optional `test/` or `val/` split next to it), optionally inside wrapping folders; hidden
  files and `__MACOSX/` are ignored, as the worker's loader ignores them. Member
  names are scanned before anything is read: absolute paths, `..`, links and devices are
  refused, as are archives with too many members or a huge declared expanded size.
"""

from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from service.api.errors import InvalidUpload

MAX_MEMBERS = 100_000
# Images are already compressed, so a real dataset expands little; a bigger claim is a bomb.
MAX_EXPANDED_BYTES = 16 * 1024**3
MAX_EXPANSION_RATIO = 200
# Below this the ratio is not checked (as in pruning/data/archives.py): a small archive of
# flat synthetic images compresses far better than 200x and expanding it harms nobody.
RATIO_FLOOR_BYTES = 16 * 1024**2
# Pillow's own decompression-bomb threshold is 2 x 89.5 Mpx; the worker refuses 1 x.
MAX_IMAGE_PIXELS = 89_478_485
# The worker holds out this fraction per class when the data has no test split
# (pruning/data/prepare.py: split_indices), keeping at least one training sample per class.
TEST_FRACTION = 0.2
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
)
SPLITS_TRAIN = "train"
SPLITS_OTHER = ("test", "val")
_LOC = ["body", "file"]
_CHANNELS = (1, 3)
# Pillow modes that load as one channel; every other mode is read as RGB by the worker.
_GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "P;L"})


@dataclass(frozen=True)
class DatasetLimits:
    """The operator's bounds (EDGEPRUNE_MAX_DATASET_FILES / _BYTES); the worker extracts with
    the same ones, so an accepted upload is never refused later for its size."""

    members: int = MAX_MEMBERS
    expanded_bytes: int = MAX_EXPANDED_BYTES


@dataclass(frozen=True)
class DatasetInfo:
    format: str
    samples: int
    classes: list[str]
    input_shape: list[int]


def dataset_format(filename: str) -> str:
    name = filename.lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    raise InvalidUpload(f"dataset {filename!r} must be a .npz, .zip or .tar.gz file", loc=_LOC)


def inspect_dataset(path: Path, fmt: str, limits: DatasetLimits | None = None) -> DatasetInfo:
    limits = limits or DatasetLimits()
    if fmt == "npz":
        return _inspect_npz(path, limits)
    if fmt == "zip":
        return _inspect_zip(path, limits)
    return _inspect_tar(path, limits)


def _fail(detail: str) -> InvalidUpload:
    return InvalidUpload(detail, loc=_LOC)


# --- .npz ----------------------------------------------------------------------------------


def _inspect_npz(path: Path, limits: DatasetLimits) -> DatasetInfo:
    # An npz is a zip of .npy members: bound its declared expansion before numpy reads it.
    try:
        with zipfile.ZipFile(path) as zf:
            _check_zip_members(zf, path.stat().st_size, limits)
    except zipfile.BadZipFile:
        raise _fail("not a valid .npz archive") from None
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            for required in ("x", "y"):
                if required not in keys:
                    raise _fail(f"the .npz has no {required!r} array (found {sorted(keys)})")
            if ("x_test" in keys) != ("y_test" in keys):
                raise _fail("x_test and y_test must be given together")
            sample_shape, labels = _check_split(npz["x"], npz["y"], "x", "y")
            test_labels = None
            if "x_test" in keys:
                test_shape, test_labels = _check_split(
                    npz["x_test"], npz["y_test"], "x_test", "y_test"
                )
                if test_shape != sample_shape:
                    raise _fail(f"x_test samples are {test_shape}, x samples are {sample_shape}")
    except ValueError as exc:  # numpy's answer to pickled object arrays and corrupt members
        raise _fail(f"unreadable .npz: {exc}") from None
    values, counts = np.unique(labels.astype(np.int64), return_counts=True)
    classes = [str(int(c)) for c in values]
    test_classes = None
    if test_labels is not None:
        test_classes = {str(int(c)) for c in np.unique(test_labels.astype(np.int64))}
    _check_splittable(dict(zip(classes, (int(c) for c in counts), strict=True)), test_classes)
    return DatasetInfo("npz", int(labels.shape[0]), classes, sample_shape)


def _check_splittable(train_counts: dict[str, int], test_classes: set[str] | None) -> None:
    """Refuse what the worker's split would refuse, so the job does not fail later.

    Every class needs a training sample. Without a test split, the worker holds out
    round(TEST_FRACTION * n) samples of each class (never the last one) and, when that
    leaves the test set empty, one sample of a class that has two: some class must have two.
    """
    if len(train_counts) < 2:
        raise _fail(f"the training data must contain at least 2 classes, not {len(train_counts)}")
    if test_classes is not None:
        unknown = sorted(test_classes - set(train_counts))
        if unknown:
            raise _fail(f"test class(es) {', '.join(unknown[:5])} have no training sample")
        return
    if max(train_counts.values()) < 2:
        raise _fail(
            f"too few samples to hold out a test set ({sum(train_counts.values())} samples, "
            "one per class); add samples or a test split"
        )


def _check_split(x: np.ndarray, y: np.ndarray, xname: str, yname: str) -> tuple[list[int], Any]:
    if x.dtype.kind not in "uif":
        raise _fail(f"{xname} must be numeric, got dtype {x.dtype}")
    whole_floats = y.dtype.kind == "f" and bool(np.isfinite(y).all() and (y == np.round(y)).all())
    if y.dtype.kind not in "ui" and not whole_floats:
        raise _fail(f"{yname} must hold integer labels, got dtype {y.dtype}")
    if y.ndim != 1:
        raise _fail(f"{yname} must be one-dimensional, got shape {list(y.shape)}")
    if x.shape[0] != y.shape[0]:
        raise _fail(f"{xname} has {x.shape[0]} samples but {yname} has {y.shape[0]}")
    if x.shape[0] == 0:
        raise _fail(f"{xname} is empty")
    if y.min() < 0:
        raise _fail(f"{yname} has negative labels")
    if x.dtype.kind == "f":
        # Chunked so the temporary boolean array stays small for big uploads.
        for start in range(0, x.shape[0], 4096):
            if not np.isfinite(x[start : start + 4096]).all():
                raise _fail(f"{xname} contains NaN or infinite values")
    return _sample_shape(x, xname), y


def _sample_shape(x: np.ndarray, name: str) -> list[int]:
    if x.ndim == 3:  # (N, H, W): grey images
        return [1, int(x.shape[1]), int(x.shape[2])]
    if x.ndim == 4:
        # The loader's rule: channels last when the last axis looks like channels and the
        # second does not.
        if x.shape[3] in _CHANNELS and x.shape[1] not in _CHANNELS:
            return [int(x.shape[3]), int(x.shape[1]), int(x.shape[2])]
        return [int(d) for d in x.shape[1:]]
    raise _fail(f"{name} must be (N, C, H, W), (N, H, W, C) or (N, H, W); got {list(x.shape)}")


# --- ImageFolder archives ------------------------------------------------------------------


def _safe_parts(name: str) -> tuple[str, ...]:
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise _fail(f"archive member {name!r} has an absolute path")
    parts = tuple(p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", "."))
    if ".." in parts:
        raise _fail(f"archive member {name!r} points outside the archive")
    return parts


def _check_zip_members(
    zf: zipfile.ZipFile, archive_size: int, limits: DatasetLimits
) -> list[zipfile.ZipInfo]:
    infos = zf.infolist()
    if len(infos) > limits.members:
        raise _fail(f"archive has {len(infos)} members; the limit is {limits.members}")
    expanded = 0
    for info in infos:
        _safe_parts(info.filename)
        # Unix mode in the high 16 bits: 0o120000 marks a symlink.
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise _fail(f"archive member {info.filename!r} is a symbolic link")
        expanded += info.file_size
    _check_expansion(expanded, archive_size, limits)
    return infos


def _check_expansion(expanded: int, archive_size: int, limits: DatasetLimits) -> None:
    if expanded > limits.expanded_bytes:
        raise _fail(
            f"archive would expand to {expanded} bytes, over the limit of "
            f"{limits.expanded_bytes}: refused"
        )
    if expanded > RATIO_FLOOR_BYTES and expanded > MAX_EXPANSION_RATIO * max(archive_size, 1):
        raise _fail(
            f"archive would expand to {expanded} bytes, over {MAX_EXPANSION_RATIO} times its "
            "size (an archive bomb?): refused"
        )


def _inspect_zip(path: Path, limits: DatasetLimits) -> DatasetInfo:
    try:
        with zipfile.ZipFile(path) as zf:
            infos = _check_zip_members(zf, path.stat().st_size, limits)
            files = [(_safe_parts(i.filename), i) for i in infos if not i.is_dir()]
            dirs = [_safe_parts(i.filename) for i in infos if i.is_dir()]
            layout = _layout([parts for parts, _ in files], dirs)
            first = next(info for parts, info in files if parts == layout.first_image)
            with zf.open(first) as fh:
                shape = _image_shape(fh, first.filename)
    except zipfile.BadZipFile:
        raise _fail("not a valid .zip archive") from None
    return DatasetInfo("zip", layout.samples, layout.classes, shape)


def _inspect_tar(path: Path, limits: DatasetLimits) -> DatasetInfo:
    archive_size = path.stat().st_size
    try:
        # Two passes: names and sizes first (refusing before anything is extracted), then
        # only the one image whose size we need.
        file_parts: list[tuple[str, ...]] = []
        dir_parts: list[tuple[str, ...]] = []
        expanded = count = 0
        with tarfile.open(path, mode="r:gz") as tf:
            for member in _iter_tar(tf):
                count += 1
                if count > limits.members:
                    raise _fail(f"archive has more than {limits.members} members")
                parts = _safe_parts(member.name)
                if member.issym() or member.islnk():
                    raise _fail(f"archive member {member.name!r} is a link")
                if not (member.isfile() or member.isdir()):
                    raise _fail(f"archive member {member.name!r} is not a file or folder")
                expanded += member.size
                _check_expansion(expanded, archive_size, limits)
                if member.isfile():
                    file_parts.append(parts)
                else:
                    dir_parts.append(parts)
        layout = _layout(file_parts, dir_parts)
        with tarfile.open(path, mode="r:gz") as tf:
            for member in _iter_tar(tf):
                if member.isfile() and _safe_parts(member.name) == layout.first_image:
                    fh = tf.extractfile(member)
                    if fh is None:
                        break
                    with fh:
                        shape = _image_shape(fh, member.name)
                    return DatasetInfo("tar.gz", layout.samples, layout.classes, shape)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise _fail(f"not a valid .tar.gz archive: {exc}") from None
    raise _fail("could not read the first image again")  # pragma: no cover - same archive


def _iter_tar(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while (member := tf.next()) is not None:
        yield member


def _is_image(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


@dataclass(frozen=True)
class _Layout:
    samples: int
    classes: list[str]
    first_image: tuple[str, ...]


def _visible(parts: tuple[str, ...]) -> bool:
    # Archive tools add hidden files and __MACOSX folders; the worker's loader skips them too.
    return all(not p.startswith(".") and p != "__MACOSX" for p in parts)


def _layout(files: list[tuple[str, ...]], dirs: list[tuple[str, ...]]) -> _Layout:
    """Classes, sample count and the first training image of an ImageFolder tree, read the
    way pruning/data/images.py reads it once extracted (the two must agree). `dirs` are the
    archive's explicit folder entries: an empty class folder is a class with no sample."""
    rel = [(p, p) for p in files if _visible(p)]  # (path below the dataset root, full path)
    root: tuple[str, ...] = ()  # where the class folders are, as full path parts
    # Step into lone wrapper folders (e.g. "pets/" from zipping a directory) that hold only
    # folders, unless the folder is itself a split.
    while (
        rel
        and len({p[0] for p, _ in rel}) == 1
        and all(len(p) >= 3 for p, _ in rel)
        and rel[0][0][0] not in (SPLITS_TRAIN, *SPLITS_OTHER)
    ):
        root += (rel[0][0][0],)
        rel = [(p[1:], full) for p, full in rel]
    test_classes: set[str] | None = None
    if any(p[0] == SPLITS_TRAIN and len(p) >= 2 for p, _ in rel):
        # The worker reads test/ (else val/) next to train/ as the test split.
        split = next((n for n in SPLITS_OTHER if any(p[0] == n for p, _ in rel)), None)
        if split is not None:
            test = _class_samples([(p[1:], full) for p, full in rel if p[0] == split])
            if not test:
                raise _fail(f"the {split}/ folder holds no images in class folders")
            test_classes = {p[0] for p, _ in test}
        rel = [(p[1:], full) for p, full in rel if p[0] == SPLITS_TRAIN]
        root += (SPLITS_TRAIN,)
    samples = _class_samples(rel)
    if not samples:
        raise _fail("the archive holds no images in class folders")
    counts: dict[str, int] = {}
    for p, _ in samples:
        counts[p[0]] = counts.get(p[0], 0) + 1
    if len(counts) < 2:
        raise _fail("an ImageFolder dataset needs at least 2 class folders")
    n = len(root)
    folders = {d[n] for d in dirs if len(d) > n and d[:n] == root and _visible(d)}
    empty = sorted(folders - set(counts))
    if empty:
        raise _fail(f"class folder(s) {', '.join(empty[:5])} hold no images")
    _check_splittable(counts, test_classes)
    return _Layout(
        samples=len(samples), classes=sorted(counts), first_image=min(f for _, f in samples)
    )


_Entry = tuple[tuple[str, ...], tuple[str, ...]]


def _class_samples(rel: list[_Entry]) -> list[_Entry]:
    # Files lying next to the class folders (a README) are not samples.
    samples = [(p, full) for p, full in rel if len(p) >= 2]
    for p, full in samples:
        if not _is_image(p[-1]):
            raise _fail(f"{'/'.join(full)!r} in a class folder is not an image")
    return samples


def _image_shape(fh: IO[bytes], name: str) -> list[int]:
    from PIL import Image, UnidentifiedImageError

    try:
        # Reads the header only. Pillow itself raises past 2x its pixel limit (and only warns
        # below): our own limit, the worker's, is checked after.
        with Image.open(fh) as img:
            width, height = img.size
            mode = img.mode
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise _fail(f"image {name!r} cannot be read: {exc}") from None
    if width * height > MAX_IMAGE_PIXELS:
        # Decoding it would take gigabytes: the worker's loader refuses it, so refuse now.
        raise _fail(f"image {name!r} has {width}x{height} pixels (a decompression bomb?)")
    channels = 1 if mode in _GREY_MODES else 3
    return [channels, int(height), int(width)]
