"""ImageFolder trees (`root/<class>/<image>`, optionally split into train/ and test/ or val/),
read lazily: each file is decoded when a batch needs it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from pruning.data.samples import ImageFiles, Samples, open_image
from pruning.data.types import DataError, RawData

_DEFAULT_SIZE = (32, 32)
_TEST_NAMES = ("test", "val")


def _visible(path: Path | str) -> bool:
    # Archive tools add hidden files and __MACOSX folders; they are not data.
    name = path if isinstance(path, str) else path.name
    return not name.startswith(".") and name != "__MACOSX"


def find_tree_root(root: Path) -> Path:
    """Step into a lone wrapper folder (e.g. an archive's top directory) while it holds only
    folders, so `data/train/cat/...` and `train/cat/...` are read the same way."""
    while True:
        entries = [p for p in root.iterdir() if _visible(p)]
        if len(entries) != 1 or not entries[0].is_dir():
            return root
        inner = [p for p in entries[0].iterdir() if _visible(p)]
        if (
            not inner
            or not all(p.is_dir() for p in inner)
            or entries[0].name in ("train", *_TEST_NAMES)
        ):
            return root
        root = entries[0]


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and _visible(p))


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and all(_visible(q) for q in p.relative_to(folder).parts)
    )


def _image_size(path: Path, shown: Path) -> tuple[int, int]:
    """(height, width) from the file's header; the pixels are decoded when a batch needs them."""
    with open_image(path, shown) as img:
        width, height = img.size
    return int(height), int(width)


def _list_split(root: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for path in _image_files(folder):
            paths.append(path)
            labels.append(index)
    return paths, labels


def load_image_folder(
    root: Path,
    *,
    input_size: tuple[int, int] | None,
    in_channels: int | None,
    source: str,
    keep: tempfile.TemporaryDirectory[str] | None = None,
) -> RawData:
    """An ImageFolder tree, read lazily: file headers now, pixels per batch (`Samples`).
    `keep` is held as long as the samples are (an archive's extraction folder)."""
    if in_channels not in (None, 1, 3):
        raise DataError(
            f"{source}: images decode to 1 or 3 channels, not in_channels={in_channels}"
        )
    mode = "L" if in_channels == 1 else "RGB"
    root = find_tree_root(root)
    train_root, test_root = root, None
    if (root / "train").is_dir():
        train_root = root / "train"
        test_root = next((root / n for n in _TEST_NAMES if (root / n).is_dir()), None)
    classes = [p.name for p in _class_dirs(train_root)]
    if test_root is not None:
        extra = sorted({p.name for p in _class_dirs(test_root)} - set(classes))
        if extra:
            raise DataError(f"{source}: test class(es) {', '.join(extra[:5])} are not in train")
    if not classes:
        raise DataError(f"{source}: no class folders found (expected root/<class>/<image>)")
    paths, labels = _list_split(train_root, classes)
    if not paths:
        raise DataError(f"{source}: no images found under the class folders")
    test_paths, test_labels = _list_split(test_root, classes) if test_root else ([], [])
    if test_root is not None and not test_paths:
        raise DataError(f"{source}: the {test_root.name}/ folder holds no images")
    sizes = {_image_size(p, p.relative_to(root)) for p in paths + test_paths}
    if input_size is None:
        input_size = next(iter(sizes)) if len(sizes) == 1 else _DEFAULT_SIZE
    reader = ImageFiles(paths + test_paths, mode, root, keep)
    x_train = Samples(reader, input_size, np.arange(len(paths)))
    x_test = Samples(reader, input_size, np.arange(len(paths), len(reader))) if test_paths else None
    y_test = torch.tensor(test_labels, dtype=torch.int64) if test_paths else None
    return RawData(x_train, torch.tensor(labels, dtype=torch.int64), classes, x_test, y_test)
