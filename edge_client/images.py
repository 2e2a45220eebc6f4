"""Image files (PNG, JPEG, ...) decoded into raw pixels shaped for a model's input.

Pillow is an optional extra of the device install (`pip install 'edgeprune[edge-images]'`):
it is imported only when an image file is given, so `.npy` input and everything else the
client does work without it.

Decoding follows the engine's ImageFolder reader, so a device sees the pixels training saw:
Pillow's `convert("L")` for one-channel models and `convert("RGB")` for three (palette,
alpha and 16-bit images included). An image whose size differs from the model's input is
resized with Pillow's bilinear filter on float pixels, which widens its support when
shrinking (antialiased) as the engine's resize does; the values stay in the 0..255 scale,
so the model's own preprocessing still applies.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

from .errors import ConfigError

EXTRA = "edgeprune[edge-images]"
SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Pillow modes by the model's channel count (the engine trains on "L" or "RGB").
_MODES = {1: "L", 3: "RGB"}


def is_image(path: Path) -> bool:
    return path.suffix.lower() in SUFFIXES


def _pillow() -> ModuleType:
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError(
            f"reading image files needs Pillow, an optional extra: pip install '{EXTRA}'"
        ) from None
    return Image


@dataclass(frozen=True)
class DecodedImage:
    pixels: np.ndarray  # float32 (C, H, W) in the source's 0..255 scale
    original_size: tuple[int, int]  # (H, W) as stored in the file

    @property
    def resized(self) -> bool:
        return self.original_size != self.pixels.shape[1:]


def load_image(path: Path, channels: int, size: tuple[int, int]) -> DecodedImage:
    """`path` as (channels, *size) float pixels; raises ConfigError when it cannot be."""
    mode = _MODES.get(channels)
    if mode is None:
        raise ConfigError(f"the model takes {channels} channels: images give 1 (grey) or 3 (RGB)")
    image_module = _pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", image_module.DecompressionBombWarning)
            with image_module.open(path) as img:
                img.load()
                converted = img.convert(mode)
    except (OSError, ValueError, image_module.DecompressionBombError, Warning) as exc:
        # UnidentifiedImageError is an OSError.
        raise ConfigError(f"cannot read image {path}: {exc}") from None
    h, w = size
    original = (converted.height, converted.width)
    planes = [converted] if channels == 1 else list(converted.split())
    if original != size:
        # Float planes: resizing the 8-bit image would round every pixel a second time.
        bilinear = image_module.Resampling.BILINEAR
        planes = [p.convert("F").resize((w, h), bilinear) for p in planes]
    pixels = np.stack([np.asarray(p, dtype=np.float32) for p in planes])
    return DecodedImage(pixels, original)


def load_images(
    paths: list[Path], channels: int, size: tuple[int, int]
) -> tuple[np.ndarray, list[str]]:
    """(N, C, H, W) float pixels of `paths`, and one note per image that was resized."""
    decoded = [load_image(p, channels, size) for p in paths]
    notes = [
        f"{p.name}: resized from {d.original_size[1]}×{d.original_size[0]} to "
        f"{size[1]}×{size[0]} (the model's input)"
        for p, d in zip(paths, decoded, strict=True)
        if d.resized
    ]
    return np.stack([d.pixels for d in decoded]), notes
