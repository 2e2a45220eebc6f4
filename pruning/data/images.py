"""ImageFolder trees (`root/<class>/<image>`, optionally split into train/ and test/ or val/)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from pruning.data.prepare import resize
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


def _decode(path: Path, mode: str, shown: Path) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                converted = img.convert(mode)
    except (
        OSError,
        UnidentifiedImageError,
        ValueError,
        Image.DecompressionBombError,
        Warning,
    ) as exc:
        raise DataError(f"unreadable image {shown}: {exc}") from None
    array = np.asarray(converted, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _read_split(
    root: Path, classes: list[str], mode: str, base: Path
) -> tuple[list[np.ndarray], list[int]]:
    images: list[np.ndarray] = []
    labels: list[int] = []
    for index, name in enumerate(classes):
        folder = root / name
        if not folder.is_dir():
            continue
        for path in _image_files(folder):
            images.append(_decode(path, mode, path.relative_to(base)))
            labels.append(index)
    return images, labels


def _stack(images: list[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """Stack images of possibly different sizes, resizing each group of equal size at once."""
    out = torch.empty((len(images), images[0].shape[0], *size), dtype=torch.float32)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, image in enumerate(images):
        by_shape.setdefault(image.shape, []).append(i)
    for indices in by_shape.values():
        batch = torch.from_numpy(np.stack([images[i] for i in indices])).float().div_(255.0)
        out[indices] = resize(batch, size)
    return out


def load_image_folder(
    root: Path, *, input_size: tuple[int, int] | None, in_channels: int | None, source: str
) -> RawData:
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
    images, labels = _read_split(train_root, classes, mode, root)
    if not images:
        raise DataError(f"{source}: no images found under the class folders")
    test_images, test_labels = (
        _read_split(test_root, classes, mode, root) if test_root else ([], [])
    )
    if test_root is not None and not test_images:
        raise DataError(f"{source}: the {test_root.name}/ folder holds no images")
    if input_size is None:
        sizes = {im.shape[1:] for im in images + test_images}
        input_size = (
            (int(images[0].shape[1]), int(images[0].shape[2])) if len(sizes) == 1 else _DEFAULT_SIZE
        )
    x_test = _stack(test_images, input_size) if test_images else None
    y_test = torch.tensor(test_labels, dtype=torch.int64) if test_images else None
    return RawData(
        _stack(images, input_size), torch.tensor(labels, dtype=torch.int64), classes, x_test, y_test
    )
