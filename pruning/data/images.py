"""ImageFolder trees (`root/<class>/<image>`, optionally split into train/ and test/ or val/),
read lazily: each file is decoded when a batch needs it.

Which files are samples of which class is decided by the same rule the API checked the
upload with (`edgeprune.contracts.dataset_rules.image_folder_layout`), read here from the
folder on disk (an upload's extracted archive, or the operator's own folder).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgeprune.contracts.dataset_rules import (
    DatasetRuleError,
    FolderListing,
    Parts,
    image_folder_layout,
    is_hidden,
)
from pruning.data.samples import ImageFiles, Samples, open_image
from pruning.data.types import DataError, RawData

_DEFAULT_SIZE = (32, 32)


def folder_listing(top: Path) -> FolderListing:
    """The files and folders below `top` as path parts. Hidden folders are not entered (the
    layout skips them anyway); linked folders are followed once, so a loop ends."""
    listing = FolderListing()
    seen: set[Path] = set()
    stack: list[tuple[Parts, Path]] = [((), top)]
    while stack:
        parts, folder = stack.pop()
        real = folder.resolve()
        if real in seen:
            continue
        seen.add(real)
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_hidden(entry.name):
                    continue
                if entry.is_dir():
                    listing.add_folder((*parts, entry.name))
                    stack.append(((*parts, entry.name), Path(entry.path)))
                elif entry.is_file():
                    listing.add_file((*parts, entry.name))
    return listing


def _image_size(path: Path, shown: str) -> tuple[int, int]:
    """(height, width) from the file's header; the pixels are decoded when a batch needs them."""
    with open_image(path, shown) as img:
        width, height = img.size
    return int(height), int(width)


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
    try:
        layout = image_folder_layout(folder_listing(root))
    except DatasetRuleError as exc:
        raise DataError(f"{source}: {exc}") from None
    paths = [root.joinpath(*parts) for _, parts in layout.train]
    labels = [index for index, _ in layout.train]
    test = layout.test or []
    test_paths = [root.joinpath(*parts) for _, parts in test]
    sizes = {
        _image_size(root.joinpath(*parts), "/".join(parts)) for _, parts in layout.train + test
    }
    if input_size is None:
        input_size = next(iter(sizes)) if len(sizes) == 1 else _DEFAULT_SIZE
    reader = ImageFiles(paths + test_paths, mode, root, keep)
    x_train = Samples(reader, input_size, np.arange(len(paths)))
    x_test = Samples(reader, input_size, np.arange(len(paths), len(reader))) if test else None
    y_test = torch.tensor([index for index, _ in test], dtype=torch.int64) if test else None
    return RawData(x_train, torch.tensor(labels, dtype=torch.int64), layout.classes, x_test, y_test)
