"""`builtin:photos`: ten-class 32×32 patches cut from the photographs bundled with scikit-image.

Why it exists: `builtin:digits` is solved by any CNN (≈99 %), so every pruning method ties
there. This task is real-image data that needs no download (scikit-image's wheel ships the
photographs in `skimage/data/`) and on which small CNNs trained for a few epochs land well
below their ceiling, so methods that keep the wrong channels lose measurable accuracy.

How it is made: each class is one photograph. A vertical band of 30 % of each photo's width
(at a position drawn from the fixed seed) is held out: test patches come from inside the band,
training patches from entirely outside it, so no pixel is shared by the two splits and the test
accuracy measures generalisation to unseen parts of the scene, not recall of seen pixels. Each
patch is a square window of 14-30 % of the photo's shorter side, cropped and downsampled to
32×32, with per-patch photometric jitter (contrast, brightness, colour cast, sensor noise) and,
for 30 % of the colour photos' patches, conversion to grey. Nearly flat or nearly black windows
(the retina's border, empty sky) are redrawn. Everything is drawn from one NumPy generator with
a fixed seed, so the data are byte-identical on every load.

Colour narrows the class but does not give it away: 30 % of the colour classes' patches are
grey, and every patch, grey or not, gets a random per-channel colour cast, so neither "grey"
nor an exact tint marks a class, and several photos share hues (cat, coffee, retina and the
astronaut's suit are orange-brown; hubble and rocket are dark with bright points). Texture
makes some classes easy (brick, gravel, hubble: ≈95-100 % for a small CNN) and others hard
(coffee, cat, motorcycle, astronaut: often 40-70 %), which is the spread the benchmarks need.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pruning.data.types import DataError, RawData

SEED = 20_260_611
PATCH = 32
TRAIN_PER_CLASS = 360
TEST_PER_CLASS = 100
TEST_BAND = 0.30  # fraction of each photo's width held out for the test split
WINDOW = (0.14, 0.30)  # window side as a fraction of the photo's shorter side
GREY_PROBABILITY = 0.3  # colour photos only; the grey photos are always grey
# Per-patch photometric jitter, each drawn uniformly: contrast about the patch mean, added
# brightness, per-channel gain (colour cast) and the std of added Gaussian noise.
CONTRAST = (0.7, 1.3)
BRIGHTNESS = (-0.1, 0.1)
CAST = (0.9, 1.1)
NOISE = (0.0, 0.04)

# (class name, file in skimage/data). Eight colour photographs and two grey ones (brick,
# gravel) repeated on three channels; see the module docstring for why colour is no shortcut.
PHOTOS: tuple[tuple[str, str], ...] = (
    ("astronaut", "astronaut.png"),
    ("cat", "chelsea.png"),
    ("coffee", "coffee.png"),
    ("rocket", "rocket.jpg"),
    ("motorcycle", "motorcycle_left.png"),
    ("hubble", "hubble_deep_field.jpg"),
    ("retina", "retina.jpg"),
    ("ihc", "ihc.png"),
    ("brick", "brick.png"),
    ("gravel", "gravel.png"),
)

_MAX_DRAWS = 50  # windows tried per patch before giving up on the flat-window rule


@dataclass(frozen=True)
class PhotoLayout:
    """Where one class's patches were cut: boxes are (left, top, right, bottom), right and
    bottom exclusive, in the photo's pixels; the test band is columns [band[0], band[1])."""

    name: str
    file: str
    size: tuple[int, int]  # (width, height)
    band: tuple[int, int]
    train_boxes: np.ndarray  # (TRAIN_PER_CLASS, 4) int64
    test_boxes: np.ndarray  # (TEST_PER_CLASS, 4) int64


@dataclass
class PhotoPatches:
    raw: RawData
    layouts: list[PhotoLayout]


def skimage_data_dir() -> Path:
    """scikit-image's bundled data folder, found without importing scikit-image."""
    missing = DataError(
        "builtin:photos needs the photographs shipped with scikit-image: "
        "pip install scikit-image (or the worker extra)"
    )
    try:
        spec = importlib.util.find_spec("skimage")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise missing
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not folder.is_dir():
        raise missing
    return folder


def load_photo_patches_builtin() -> RawData:
    """The `builtin:photos` task: 3×32×32 floats in 0..1 with its own test split."""
    return make_photo_patches().raw


def make_photo_patches(data_dir: Path | None = None) -> PhotoPatches:
    """Cut the patches (see the module docstring); `data_dir` overrides skimage's folder."""
    folder = skimage_data_dir() if data_dir is None else Path(data_dir)
    rng = np.random.default_rng(SEED)
    xs_train, xs_test, layouts = [], [], []
    for name, file in PHOTOS:
        photo, grey = _open(folder / file)
        layout, x_train, x_test = _cut(photo, grey, name, file, rng)
        layouts.append(layout)
        xs_train.append(x_train)
        xs_test.append(x_test)
    classes = [name for name, _ in PHOTOS]
    labels = np.arange(len(classes), dtype=np.int64)
    return PhotoPatches(
        raw=RawData(
            x_train=torch.from_numpy(np.concatenate(xs_train)),
            y_train=torch.from_numpy(np.repeat(labels, TRAIN_PER_CLASS)),
            classes=classes,
            x_test=torch.from_numpy(np.concatenate(xs_test)),
            y_test=torch.from_numpy(np.repeat(labels, TEST_PER_CLASS)),
        ),
        layouts=layouts,
    )


def _open(path: Path) -> tuple[Image.Image, bool]:
    """The photo as RGB, and whether it was grey to begin with."""
    if not path.is_file():
        raise DataError(
            f"builtin:photos: {path.name} is missing from {path.parent}; "
            "pip install scikit-image (its wheel ships the photographs)"
        )
    with Image.open(path) as image:
        return image.convert("RGB"), image.mode in ("1", "L", "LA", "I", "I;16", "F")


def _cut(
    photo: Image.Image, grey_photo: bool, name: str, file: str, rng: np.random.Generator
) -> tuple[PhotoLayout, np.ndarray, np.ndarray]:
    width, height = photo.size
    band_width = round(TEST_BAND * width)
    sides = (int(WINDOW[0] * min(width, height)), int(WINDOW[1] * min(width, height)))
    # Every test window must fit in the band, and every training window beside it wherever
    # the band lies.
    if sides[1] > band_width or width - band_width < 2 * sides[1]:
        raise DataError(f"builtin:photos: {file} is too small for its windows and test band")
    band_left = int(rng.integers(0, width - band_width + 1))
    band = (band_left, band_left + band_width)
    train_boxes, x_train = _patches(photo, rng, TRAIN_PER_CLASS, sides, band, inside=False)
    test_boxes, x_test = _patches(photo, rng, TEST_PER_CLASS, sides, band, inside=True)
    x_train = _jitter(x_train, rng, grey_photo)
    x_test = _jitter(x_test, rng, grey_photo)
    layout = PhotoLayout(name, file, (width, height), band, train_boxes, test_boxes)
    return layout, x_train, x_test


def _patches(
    photo: Image.Image,
    rng: np.random.Generator,
    count: int,
    sides: tuple[int, int],
    band: tuple[int, int],
    *,
    inside: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """`count` windows in (inside) or wholly outside (not inside) the band, as uint8 NHWC."""
    width, height = photo.size
    boxes = np.zeros((count, 4), dtype=np.int64)
    patches = np.zeros((count, PATCH, PATCH, 3), dtype=np.uint8)
    for i in range(count):
        for _ in range(_MAX_DRAWS):
            side = int(rng.integers(sides[0], sides[1] + 1))
            left = _left(rng, side, width, band, inside)
            top = int(rng.integers(0, height - side + 1))
            box = (left, top, left + side, top + side)
            # Crop first: resizing with `box=` would let the filter read past the window.
            patch = np.asarray(photo.crop(box).resize((PATCH, PATCH), Image.Resampling.BILINEAR))
            if _informative(patch):
                break
        boxes[i] = box
        patches[i] = patch
    return boxes, patches


def _left(
    rng: np.random.Generator, side: int, width: int, band: tuple[int, int], inside: bool
) -> int:
    """A window's left edge: within the band, or in [0, band[0]-side] ∪ [band[1], width-side]."""
    if inside:
        return int(rng.integers(band[0], band[1] - side + 1))
    before = max(band[0] - side + 1, 0)  # left edges 0..band[0]-side
    after = max(width - side - band[1] + 1, 0)  # left edges band[1]..width-side
    pick = int(rng.integers(0, before + after))
    return pick if pick < before else band[1] + pick - before


def _informative(patch: np.ndarray) -> bool:
    """Not nearly flat and not mostly black (retina's border, the darkest sky)."""
    luma = patch.astype(np.float32).mean(axis=2) / 255.0
    return bool(luma.std() > 0.03 and (luma < 0.03).mean() < 0.5)


def _jitter(patches: np.ndarray, rng: np.random.Generator, grey_photo: bool) -> np.ndarray:
    """uint8 NHWC → float32 NCHW in 0..1 with per-patch grey, contrast, brightness, cast
    and noise."""
    n = len(patches)
    x = patches.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    grey = np.ones(n, dtype=bool) if grey_photo else rng.random(n) < GREY_PROBABILITY
    luma = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2])[:, None]
    x = np.where(grey[:, None, None, None], luma, x)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    contrast = rng.uniform(*CONTRAST, size=(n, 1, 1, 1)).astype(np.float32)
    brightness = rng.uniform(*BRIGHTNESS, size=(n, 1, 1, 1)).astype(np.float32)
    cast = rng.uniform(*CAST, size=(n, 3, 1, 1)).astype(np.float32)
    x = ((x - mean) * contrast + mean + brightness) * cast
    sigma = rng.uniform(*NOISE, size=(n, 1, 1, 1)).astype(np.float32)
    x = x + sigma * rng.standard_normal(size=x.shape, dtype=np.float32)
    return np.ascontiguousarray(np.clip(x, 0.0, 1.0), dtype=np.float32)
