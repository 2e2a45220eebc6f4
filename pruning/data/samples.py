"""Samples read on demand: image files decoded per batch, uint8 arrays kept as uint8.

A dataset of 50,000 images at 224×224 is 30 GB as float32; kept encoded (or as uint8) and
turned into normalised float32 one batch at a time, memory no longer grows with the float
size of the dataset. `Samples` looks like the (N, C, H, W) tensor the loops index
(`len`, `shape`, `x[indices]`), so training, evaluation and export read either form.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from edgeprune.contracts.dataset_rules import DatasetRuleError, check_image_size
from pruning.data.types import DataError

# Elements (C·H·W·n) per chunk of a streaming pass: 16 M float32 values = 64 MB.
_CHUNK_ELEMENTS = 16 * 1024 * 1024


class SampleReader(Protocol):
    """Raw samples in the source's own scale (pixels/255 for 8-bit images), by position."""

    channels: int

    def __len__(self) -> int: ...

    def read(self, positions: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        """float32 (len(positions), C, *size), resized where a sample's size differs."""
        ...


def resize_batch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of (N, C, H, W) floats; a no-op when the size matches."""
    if tuple(x.shape[2:]) == tuple(size):
        return x
    if min(size) < 1:
        raise DataError(f"input_size must be positive, got {size}")
    if x.shape[0] == 0:
        return x.new_zeros((0, x.shape[1], *size))
    return F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)


class Uint8Arrays:
    """An (N, C, H, W) uint8 array (CIFAR batches, 8-bit `.npz` images) read as pixels/255."""

    def __init__(self, array: np.ndarray):
        if array.dtype != np.uint8 or array.ndim != 4:
            raise ValueError(
                f"expected a uint8 (N, C, H, W) array, got {array.dtype} {array.shape}"
            )
        self.array = array
        self.channels = int(array.shape[1])
        self.size = (int(array.shape[2]), int(array.shape[3]))

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, positions: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        batch = torch.from_numpy(np.ascontiguousarray(self.array[positions]))
        return resize_batch(batch.float().div_(255.0), size)


class ImageFiles:
    """Image files decoded (and resized) when a batch needs them, never all at once.

    `keep` holds whatever must outlive the reader, e.g. the temporary folder an uploaded
    archive was extracted into; it is not sent to DataLoader worker processes, which read
    the files while the parent still holds it.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        mode: str,
        base: Path,
        keep: tempfile.TemporaryDirectory[str] | None = None,
    ):
        self.paths = [str(p) for p in paths]
        self.mode = mode
        self.base = str(base)
        self.channels = 1 if mode == "L" else 3
        self.keep = keep

    def __len__(self) -> int:
        return len(self.paths)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["keep"] = None
        return state

    def read(self, positions: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        out = torch.empty((len(positions), self.channels, *size), dtype=torch.float32)
        for row, position in enumerate(positions.tolist()):
            image = torch.from_numpy(self.decode(int(position)))
            out[row] = resize_batch(image[None].float().div_(255.0), size)[0]
        return out

    def decode(self, position: int) -> np.ndarray:
        """One file as uint8 (C, H, W); an unreadable file is a DataError naming it."""
        path = Path(self.paths[position])
        shown = path.relative_to(self.base) if path.is_relative_to(self.base) else path.name
        return decode_image(path, self.mode, shown)


@contextlib.contextmanager
def open_image(path: Path, shown: Path | str) -> Iterator[Image.Image]:
    """Pillow's image at `path`; anything unreadable, or over the pixel limit the API checks
    uploads with (a decompression bomb), is a DataError naming the file as `shown`."""
    try:
        with warnings.catch_warnings():
            # The limit is ours (check_image_size), not Pillow's global setting.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                check_image_size(img.width, img.height, str(shown))
                yield img
    except DatasetRuleError as exc:
        raise DataError(str(exc)) from None
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"unreadable image {shown}: {exc}") from None


def decode_image(path: Path, mode: str, shown: Path | str) -> np.ndarray:
    """Decode one image file to uint8 (C, H, W) in `mode` ("L" or "RGB")."""
    with open_image(path, shown) as img:
        img.load()
        converted = img.convert(mode)
    array = np.array(converted, dtype=np.uint8)  # a writable copy, as torch wants
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


class Samples:
    """A lazily read, optionally normalised view of some samples of a reader.

    `x[key]` (an int, a slice or an index tensor/array) returns a float32 tensor, exactly as
    indexing an in-memory (N, C, H, W) tensor would.
    """

    def __init__(
        self,
        reader: SampleReader,
        size: tuple[int, int],
        positions: np.ndarray | None = None,
        mean: torch.Tensor | None = None,
        std: torch.Tensor | None = None,
    ):
        self.reader = reader
        self.size = (int(size[0]), int(size[1]))
        self.positions = (
            np.arange(len(reader), dtype=np.int64)
            if positions is None
            else np.asarray(positions, dtype=np.int64)
        )
        self.mean, self.std = mean, std

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.positions), self.reader.channels, *self.size))

    def __len__(self) -> int:
        return len(self.positions)

    def _positions(self, key: Any) -> np.ndarray:
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        if isinstance(key, int | np.integer):
            return self.positions[[int(key)]]
        return self.positions[key]

    def __getitem__(self, key: Any) -> torch.Tensor:
        batch = self.reader.read(self._positions(key), self.size)
        if isinstance(key, int | np.integer):
            batch = batch[0]
        return self._normalise(batch)

    def _normalise(self, batch: torch.Tensor) -> torch.Tensor:
        if self.mean is None or self.std is None:
            return batch
        view = (-1, 1, 1) if batch.dim() == 3 else (1, -1, 1, 1)
        return batch.sub_(self.mean.view(view)).div_(self.std.view(view))

    def subset(self, key: Any) -> Samples:
        return Samples(self.reader, self.size, self._positions(key), self.mean, self.std)

    def normalised(self, mean: torch.Tensor, std: torch.Tensor) -> Samples:
        return Samples(self.reader, self.size, self.positions, mean, std)

    def resized(self, size: tuple[int, int]) -> Samples:
        return Samples(self.reader, size, self.positions, self.mean, self.std)

    def chunk_size(self) -> int:
        """Samples per step of a streaming pass, bounded in memory whatever the image size."""
        per_sample = max(1, self.reader.channels * self.size[0] * self.size[1])
        return max(1, _CHUNK_ELEMENTS // per_sample)
