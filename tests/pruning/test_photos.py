"""`builtin:photos`: shapes, determinism, disjoint train/test regions, balance and errors."""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec
from pathlib import Path

import numpy as np
import pytest
import torch

from pruning.data import DataError, load_task_data, photos
from pruning.data.loader import BUILTINS
from pruning.data.photos import (
    PHOTOS,
    TEST_PER_CLASS,
    TRAIN_PER_CLASS,
    PhotoPatches,
    load_photo_patches_builtin,
    make_photo_patches,
)

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("skimage") is None, reason="scikit-image (worker extra) absent"
)


@pytest.fixture(scope="module")
def patches() -> PhotoPatches:
    return make_photo_patches()


def test_shapes_dtypes_and_classes(patches: PhotoPatches) -> None:
    raw = patches.raw
    assert raw.x_test is not None and raw.y_test is not None
    assert raw.classes == [name for name, _ in PHOTOS] and len(raw.classes) == 10
    assert tuple(raw.x_train.shape) == (10 * TRAIN_PER_CLASS, 3, 32, 32)
    assert tuple(raw.x_test.shape) == (10 * TEST_PER_CLASS, 3, 32, 32)
    assert raw.x_train.dtype == raw.x_test.dtype == torch.float32
    assert raw.y_train.dtype == raw.y_test.dtype == torch.int64
    for x in (raw.x_train, raw.x_test):
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
        assert float(x.std()) > 0.05  # not blank


def test_classes_are_balanced(patches: PhotoPatches) -> None:
    raw = patches.raw
    assert raw.y_test is not None
    assert raw.y_train.bincount().tolist() == [TRAIN_PER_CLASS] * 10
    assert raw.y_test.bincount().tolist() == [TEST_PER_CLASS] * 10


def test_deterministic(patches: PhotoPatches) -> None:
    again = load_photo_patches_builtin()
    assert again.x_test is not None and patches.raw.x_test is not None
    assert torch.equal(again.x_train, patches.raw.x_train)
    assert torch.equal(again.x_test, patches.raw.x_test)
    assert torch.equal(again.y_train, patches.raw.y_train)


def test_train_and_test_regions_are_disjoint(patches: PhotoPatches) -> None:
    assert [layout.name for layout in patches.layouts] == patches.raw.classes
    for layout in patches.layouts:
        width, height = layout.size
        left, right = layout.band
        assert 0 <= left < right <= width
        train, test = layout.train_boxes, layout.test_boxes
        assert train.shape == (TRAIN_PER_CLASS, 4) and test.shape == (TEST_PER_CLASS, 4)
        for boxes in (train, test):
            assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= width).all()
            assert (boxes[:, 1] >= 0).all() and (boxes[:, 3] <= height).all()
            assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        # Test windows inside the band; training windows end before it or start after it.
        assert (test[:, 0] >= left).all() and (test[:, 2] <= right).all()
        assert ((train[:, 2] <= left) | (train[:, 0] >= right)).all(), layout.name
        # So no training pixel column is a test pixel column.
        train_cols = np.zeros(width, dtype=bool)
        test_cols = np.zeros(width, dtype=bool)
        for x0, _, x1, _ in train:
            train_cols[x0:x1] = True
        for x0, _, x1, _ in test:
            test_cols[x0:x1] = True
        assert not (train_cols & test_cols).any(), layout.name


def test_no_patch_is_repeated_across_splits(patches: PhotoPatches) -> None:
    raw = patches.raw
    assert raw.x_test is not None
    train = {bytes(x.numpy().tobytes()) for x in raw.x_train}
    assert not any(bytes(x.numpy().tobytes()) in train for x in raw.x_test)


def test_load_task_data_builtin_photos() -> None:
    assert "builtin:photos" in BUILTINS
    data = load_task_data("builtin:photos")
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert len(data.y_train) == 10 * TRAIN_PER_CLASS  # its own test split is kept
    assert len(data.y_test) == 10 * TEST_PER_CLASS
    assert data.source == "builtin:photos"


def test_missing_scikit_image_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def no_skimage(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "skimage" else real(name, package)

    monkeypatch.setattr(photos.importlib.util, "find_spec", no_skimage)
    with pytest.raises(DataError, match="pip install scikit-image"):
        load_photo_patches_builtin()
    with pytest.raises(DataError, match="pip install scikit-image"):
        load_task_data("builtin:photos")


def test_missing_image_folder_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match=r"astronaut\.png is missing.*pip install scikit-image"):
        make_photo_patches(tmp_path)
    monkeypatch.setattr(photos, "skimage_data_dir", lambda: tmp_path / "nowhere")
    with pytest.raises(DataError, match="pip install scikit-image"):
        load_photo_patches_builtin()
