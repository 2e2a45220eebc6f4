"""What an edge dataset must be, written once for both doors it goes through: the API's
upload check (`service/api/validation`) and the engine's loaders (`pruning/data`).

Standard library only, so the torch-free API can call it. Each side reads the bytes its own
way (zip and tar members, numpy arrays, image headers, a folder on disk) and hands the facts
to these rules; a broken rule raises `DatasetRuleError` with a one-line reason, which the API
answers as a 422 and the engine as a `DataError`. An upload the API accepts is therefore one
the worker can read, and one it refuses would have failed the job.

Two checks need the array's values and stay with numpy on each side: image values must be
finite once read as float32 (what the engine trains on), and `class_labels` gets the label
array's unique values.
"""

from __future__ import annotations

import math
import stat
import tarfile
import zipfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Final, Literal, Protocol


class DatasetRuleError(ValueError):
    """The dataset breaks one of the rules below (a one-line reason naming the part)."""


# --- formats -------------------------------------------------------------------------------

# What the API takes as an upload; the engine also reads a plain `.tar` and folders.
UPLOAD_FORMATS = ("npz", "zip", "tar.gz")
ARCHIVE_FORMATS = ("zip", "tar.gz", "tar")
# Tars are opened with transparent compression, so both sides read the same members.
TAR_MODE: Final = "r:*"


def dataset_format(filename: str) -> str | None:
    """'npz', 'zip', 'tar.gz' (also `.tgz`) or 'tar' by the file's name; None for others."""
    name = filename.lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if name.endswith(".tar"):
        return "tar"
    return None


# --- archive members -----------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveLimits:
    """How far an archive (an `.npz` is one too) may expand. The operator sets the first two
    (EDGEPRUNE_MAX_DATASET_FILES, EDGEPRUNE_MAX_DATASET_BYTES); the API checks uploads and
    the worker extracts with the same values."""

    members: int = 100_000
    expanded_bytes: int = 16 * 1024**3
    # Images are already compressed, so a real dataset expands little; more is a bomb.
    ratio: int = 200


DEFAULT_LIMITS = ArchiveLimits()
# Below this total the ratio is not checked: a small archive of flat synthetic images
# compresses far better than 200x and expanding it harms nobody.
RATIO_FLOOR_BYTES = 16 * 1024**2

Parts = tuple[str, ...]
MemberKind = Literal["file", "folder", "link", "special"]
_REFUSED_KINDS = {"link": "is a link", "special": "is not a file or folder"}


def member_parts(name: str) -> Parts:
    """An archive member's path as parts below the archive's top; absolute paths, drive or
    stream names (`C:`, `a:b`) and `..` are refused."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]):
        raise DatasetRuleError(f"archive member {name!r} has an absolute path")
    if ".." in parts:
        raise DatasetRuleError(f"archive member {name!r} points outside the archive ('..')")
    return tuple(p for p in parts if p not in ("", "."))


class MemberScan:
    """Every member of one archive, checked in the archive's order before anything is
    extracted or read: the member count, the path, the kind (files and folders only, never
    links or devices), the declared expanded size, and a name used twice. `listing` is the
    tree the members make, for `image_folder_layout`."""

    def __init__(self, archive_bytes: int, limits: ArchiveLimits = DEFAULT_LIMITS):
        self.archive_bytes = archive_bytes
        self.limits = limits
        self.count = 0
        self.expanded = 0
        self.listing = FolderListing()

    def add_zip(self, info: zipfile.ZipInfo) -> Parts:
        # Unix mode in the high 16 bits; zips from other systems leave the type bits 0.
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            return self._add(info.filename, "link", info.file_size)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            return self._add(info.filename, "special", info.file_size)
        return self._add(info.filename, "folder" if info.is_dir() else "file", info.file_size)

    def add_tar(self, member: tarfile.TarInfo) -> Parts:
        if member.issym() or member.islnk():
            return self._add(member.name, "link", member.size)
        if not (member.isfile() or member.isdir()):
            return self._add(member.name, "special", member.size)
        return self._add(member.name, "folder" if member.isdir() else "file", member.size)

    def _add(self, name: str, kind: MemberKind, size: int) -> Parts:
        self.count += 1
        limits = self.limits
        if self.count > limits.members:
            raise DatasetRuleError(
                f"the archive has more than {limits.members} members (the operator's limit: "
                "EDGEPRUNE_MAX_DATASET_FILES)"
            )
        parts = member_parts(name)
        if kind in _REFUSED_KINDS:
            raise DatasetRuleError(f"archive member {name!r} {_REFUSED_KINDS[kind]}: refused")
        self.expanded += max(size, 0)
        if self.expanded > limits.expanded_bytes:
            raise DatasetRuleError(
                f"the archive expands to more than {limits.expanded_bytes} bytes (the "
                "operator's limit: EDGEPRUNE_MAX_DATASET_BYTES)"
            )
        if self.expanded > RATIO_FLOOR_BYTES and self.expanded > limits.ratio * max(
            self.archive_bytes, 1
        ):
            raise DatasetRuleError(
                f"the archive expands to over {limits.ratio} times its size (an archive bomb?)"
            )
        if kind == "folder":
            self.listing.add_folder(parts)
        elif not parts:
            raise DatasetRuleError(f"archive member {name!r} is a file without a name")
        else:
            self.listing.add_file(parts)
        return parts


# --- ImageFolder trees ---------------------------------------------------------------------

SPLIT_TRAIN = "train"
# Next to train/, the first of these that exists is the test split.
SPLITS_TEST = ("test", "val")
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
)


def is_hidden(name: str) -> bool:
    """Archive tools add hidden files (`.DS_Store`) and `__MACOSX/` folders: not data."""
    return name.startswith(".") or name == "__MACOSX"


class FolderListing:
    """The files and folders of a tree as path parts below its top: an archive's members,
    or a walk of a folder on disk. Parent folders are implied by what they hold."""

    def __init__(self) -> None:
        # folder -> {child name: is a folder}
        self.children: dict[Parts, dict[str, bool]] = {(): {}}
        self.files: list[Parts] = []

    def add_folder(self, parts: Parts) -> None:
        for depth in range(1, len(parts) + 1):
            folder = parts[:depth]
            siblings = self.children[folder[:-1]]
            if siblings.get(folder[-1]) is False:
                raise DatasetRuleError(f"{'/'.join(folder)!r} is both a file and a folder")
            if folder[-1] not in siblings:
                siblings[folder[-1]] = True
                self.children[folder] = {}

    def add_file(self, parts: Parts) -> None:
        self.add_folder(parts[:-1])
        siblings = self.children[parts[:-1]]
        if parts[-1] in siblings:
            what = "a folder too" if siblings[parts[-1]] else "there twice"
            raise DatasetRuleError(f"archive member {'/'.join(parts)!r} is {what}")
        siblings[parts[-1]] = False
        self.files.append(parts)

    def visible(self, folder: Parts) -> dict[str, bool]:
        return {n: d for n, d in self.children.get(folder, {}).items() if not is_hidden(n)}


Sample = tuple[int, Parts]  # (class index, the file's parts below the listing's top)


@dataclass(frozen=True)
class ImageFolderLayout:
    """Samples in reading order: by class (sorted names), then by path within a class."""

    classes: list[str]
    train: list[Sample]
    test: list[Sample] | None  # None: the tree has no test split

    def train_counts(self) -> list[int]:
        counts = [0] * len(self.classes)
        for index, _ in self.train:
            counts[index] += 1
        return counts


def image_folder_layout(listing: FolderListing) -> ImageFolderLayout:
    """Read `root/<class>/<image>`, or `root/train/<class>/...` with an optional `test/`
    (else `val/`) beside it, below any lone wrapper folders (`pets/` from zipping a folder).
    Hidden files and folders are skipped; files beside the class folders are not samples;
    a file in a class folder (at any depth) must be an image by its suffix."""
    root: Parts = ()
    while True:
        entries = listing.visible(root)
        if len(entries) != 1 or not next(iter(entries.values())):
            break
        inner = (*root, next(iter(entries)))
        inside = listing.visible(inner)
        if not inside or not all(inside.values()) or inner[-1] in (SPLIT_TRAIN, *SPLITS_TEST):
            break
        root = inner
    train_root, test_root = root, None
    if listing.visible(root).get(SPLIT_TRAIN):
        train_root = (*root, SPLIT_TRAIN)
        test_root = next(((*root, n) for n in SPLITS_TEST if listing.visible(root).get(n)), None)
    classes = sorted(n for n, folder in listing.visible(train_root).items() if folder)
    if test_root is not None:
        test_classes = {n for n, folder in listing.visible(test_root).items() if folder}
        extra = sorted(test_classes - set(classes))
        if extra:
            raise DatasetRuleError(f"test class(es) {', '.join(extra[:5])} have no training sample")
    if not classes:
        raise DatasetRuleError("no class folders found (expected root/<class>/<image>)")
    train = _samples(listing, train_root, classes)
    if not train:
        raise DatasetRuleError("no images found under the class folders")
    test = None
    if test_root is not None:
        test = _samples(listing, test_root, classes)
        if not test:
            raise DatasetRuleError(f"the {test_root[-1]}/ folder holds no images")
    return ImageFolderLayout(classes, train, test)


def _samples(listing: FolderListing, folder: Parts, classes: list[str]) -> list[Sample]:
    index = {name: i for i, name in enumerate(classes)}
    depth = len(folder)
    samples = []
    for parts in listing.files:
        if len(parts) < depth + 2 or parts[:depth] != folder or parts[depth] not in index:
            continue
        if any(is_hidden(p) for p in parts[depth + 1 :]):
            continue
        if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            raise DatasetRuleError(f"{'/'.join(parts)!r} in a class folder is not an image")
        samples.append((index[parts[depth]], parts))
    return sorted(samples)


# --- images --------------------------------------------------------------------------------

# Pillow's own warning threshold (its hard error is at twice this). Decoding more would take
# gigabytes: a decompression bomb.
MAX_IMAGE_PIXELS = 89_478_485
# Pillow modes that are one channel: the API reports such images as (1, H, W). The engine
# reads every image in the model's channels (grey for a 1-channel model, else RGB).
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "P;L"})


def check_image_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise DatasetRuleError(
            f"image {name!r} has {width}x{height} pixels, over {MAX_IMAGE_PIXELS} "
            "(a decompression bomb?)"
        )


def image_channels(mode: str) -> int:
    return 1 if mode in GREY_MODES else 3


# --- .npz arrays ---------------------------------------------------------------------------

NPZ_ARRAYS = ("x", "y", "x_test", "y_test")
_CHANNELS = (1, 3)


class _DType(Protocol):
    @property
    def kind(self) -> str: ...


class _Array(Protocol):
    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> _DType: ...


@dataclass(frozen=True)
class ArrayFacts:
    """What numpy says about an array without looking at its values."""

    shape: tuple[int, ...]
    kind: str  # numpy's dtype.kind: 'u', 'i', 'f', 'b', 'c', 'U', 'O', ...
    dtype: str

    @classmethod
    def of(cls, array: _Array) -> ArrayFacts:
        """From a numpy array (read through its shape and dtype: no numpy import here)."""
        return cls(tuple(int(d) for d in array.shape), array.dtype.kind, str(array.dtype))


@dataclass(frozen=True)
class ImageArray:
    """How an image array's axes are read: 'NCHW', 'NHWC' or 'NHW' (grey), and the (C, H, W)
    of one sample."""

    axes: str
    sample_shape: tuple[int, int, int]


@dataclass(frozen=True)
class NpzLayout:
    x: ImageArray
    x_test: ImageArray | None


def check_npz_names(names: Collection[str]) -> None:
    missing = [n for n in ("x", "y") if n not in names]
    if missing:
        raise DatasetRuleError(
            f"the .npz has no {' or '.join(missing)} array (found {sorted(names)})"
        )
    if ("x_test" in names) != ("y_test" in names):
        raise DatasetRuleError("x_test and y_test must be given together")


def npz_layout(arrays: Mapping[str, ArrayFacts]) -> NpzLayout:
    """The checks on an `.npz`'s arrays that need only their shapes and dtypes."""
    check_npz_names(arrays.keys())
    x = _image_array(arrays["x"], "x")
    _check_labels(arrays["y"], "y", arrays["x"].shape[0], "x")
    x_test = None
    if "x_test" in arrays:
        x_test = _image_array(arrays["x_test"], "x_test")
        _check_labels(arrays["y_test"], "y_test", arrays["x_test"].shape[0], "x_test")
        check_test_channels(x.sample_shape[0], x_test.sample_shape[0])
    return NpzLayout(x, x_test)


def _image_array(facts: ArrayFacts, name: str) -> ImageArray:
    if facts.kind not in "uif":
        raise DatasetRuleError(f"{name} must hold numbers, not dtype {facts.dtype}")
    shape = facts.shape
    if len(shape) == 3:
        axes, sample = "NHW", (1, shape[1], shape[2])
    elif len(shape) == 4 and shape[3] in _CHANNELS and shape[1] not in _CHANNELS:
        # Channels last when the last axis looks like channels and the second does not.
        axes, sample = "NHWC", (shape[3], shape[1], shape[2])
    elif len(shape) == 4:
        axes, sample = "NCHW", (shape[1], shape[2], shape[3])
    else:
        raise DatasetRuleError(
            f"{name} must be (N, C, H, W), (N, H, W, C) or (N, H, W); got {list(shape)}"
        )
    if shape[0] == 0 or min(sample) < 1:
        raise DatasetRuleError(f"{name} is empty (shape {list(shape)})")
    return ImageArray(axes, sample)


def _check_labels(facts: ArrayFacts, name: str, samples: int, xname: str) -> None:
    if len(facts.shape) != 1:
        raise DatasetRuleError(
            f"{name} must be one label per sample, got shape {list(facts.shape)}"
        )
    if facts.kind not in "iuf":
        raise DatasetRuleError(f"{name} must hold integer class labels, not dtype {facts.dtype}")
    if facts.shape[0] != samples:
        raise DatasetRuleError(f"{xname} has {samples} samples but {name} has {facts.shape[0]}")


def class_labels(values: Sequence[float], name: str, dtype: str) -> list[int]:
    """A label array's distinct values as integers: floats only when whole numbers (5.0),
    and every label within int64."""
    labels = []
    for value in values:
        if not math.isfinite(value) or value != int(value) or abs(value) >= 2**63:
            raise DatasetRuleError(f"{name} must hold integer class labels, not dtype {dtype}")
        labels.append(int(value))
    return labels


def not_finite(name: str) -> DatasetRuleError:
    return DatasetRuleError(f"{name} contains NaN or infinite values (as float32)")


# --- classes and the train/test split ------------------------------------------------------

# Without a test split in the data, this fraction of each class is held out for testing.
TEST_FRACTION = 0.2


def check_test_channels(train: int, test: int) -> None:
    if train != test:
        raise DatasetRuleError(f"train has {train} channel(s) but test has {test}")


def held_out_counts(train_counts: Sequence[int], fraction: float = TEST_FRACTION) -> list[int]:
    """How many samples of each class the split holds out: round(fraction * n), keeping at
    least one for training; if that is none at all, one of the first largest class (which
    needs two)."""
    held = [max(0, min(int(fraction * n + 0.5), n - 1)) for n in train_counts]
    if sum(held) == 0:
        largest = max(range(len(train_counts)), key=train_counts.__getitem__, default=0)
        if not train_counts or train_counts[largest] < 2:
            raise DatasetRuleError(
                f"too few samples to hold out a test set ({sum(train_counts)} samples)"
            )
        held[largest] = 1
    return held


def check_classes(
    classes: Sequence[str],
    train_counts: Sequence[int],
    test_samples: int | None,
    fraction: float = TEST_FRACTION,
) -> None:
    """Every class (classes seen only in the test split count) needs a training sample,
    there are at least two, and a test set exists: given (`test_samples`, None when the data
    has none), or held out by `held_out_counts`."""
    if len(classes) < 2:
        raise DatasetRuleError(f"found {len(classes)} class(es); at least 2 are needed")
    absent = [name for name, n in zip(classes, train_counts, strict=True) if n == 0]
    if absent:
        raise DatasetRuleError(f"class(es) {', '.join(absent[:5])} have no training sample")
    if test_samples is None:
        held_out_counts(train_counts, fraction)
    elif test_samples == 0:
        raise DatasetRuleError("the test split is empty")
