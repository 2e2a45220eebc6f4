"""Image files and 8-bit arrays are read a batch at a time (`pruning.data.samples`): the
values equal an eager decode, workers give the same batches, archives outlive the loader."""

from __future__ import annotations

import gc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pruning.data import DataError, Samples, TaskData, iterate_batches, load_task_data
from pruning.data.prepare import channel_stats


def _tree(root: Path, per_class: int = 6, size: tuple[int, int] = (12, 10)) -> Path:
    rng = np.random.default_rng(0)
    for name in ("ant", "bee", "cow"):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def _eager(paths: list[str]) -> torch.Tensor:
    """What the former loader did: decode every file up front, pixels / 255."""
    arrays = [np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1) for p in paths]
    return torch.from_numpy(np.stack(arrays)).float() / 255.0


def test_an_image_folder_is_read_lazily_and_equals_an_eager_decode(tmp_path: Path) -> None:
    data = load_task_data(str(_tree(tmp_path / "tree")))
    assert isinstance(data.x_train, Samples) and isinstance(data.x_test, Samples)
    reader = data.x_train.reader
    files = [reader.paths[int(p)] for p in data.x_train.positions]  # type: ignore[attr-defined]
    raw = _eager(files)
    mean, std = channel_stats(raw)
    expected = (raw - mean[None, :, None, None]) / std[None, :, None, None]
    assert data.mean == pytest.approx(mean.tolist(), abs=1e-6)
    assert torch.allclose(data.x_train[:], expected, atol=1e-5)
    picked = torch.tensor([4, 0, 7])
    assert torch.allclose(data.x_train[picked], expected[picked], atol=1e-5)
    assert torch.allclose(data.x_train[3], expected[3], atol=1e-5)


def test_the_streaming_statistics_equal_the_in_memory_ones(tmp_path: Path) -> None:
    data = load_task_data(str(_tree(tmp_path / "tree")), input_size=(16, 16))
    assert isinstance(data.x_train, Samples)
    unnormalised = Samples(data.x_train.reader, (16, 16), data.x_train.positions)
    streamed = channel_stats(unnormalised)
    in_memory = channel_stats(unnormalised[:])
    for a, b in zip(streamed, in_memory, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_uint8_arrays_stay_uint8_until_a_batch_is_read(tmp_path: Path) -> None:
    x = np.random.default_rng(1).integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(40) % 4)
    data = load_task_data(str(tmp_path / "d.npz"))
    assert isinstance(data.x_train, Samples)
    assert data.x_train.reader.array.dtype == np.uint8  # type: ignore[attr-defined]
    batch = data.x_train[torch.arange(5)]
    assert batch.dtype == torch.float32 and batch.shape == (5, 3, 8, 8)


def iter_batches(data: TaskData, workers: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(5)
    return iterate_batches(
        data.x_train, data.y_train, 4, shuffle=True, augment=False, generator=generator,
        workers=workers,
    )  # fmt: skip


def test_worker_processes_give_the_same_batches_as_the_main_thread(tmp_path: Path) -> None:
    data = load_task_data(str(_tree(tmp_path / "tree")))

    def batches(workers: int, seed: int = 3) -> list[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(seed)
        return list(
            iterate_batches(
                data.x_train,
                data.y_train,
                4,
                shuffle=True,
                augment=True,
                generator=generator,
                workers=workers,
            )
        )

    # A pass left early (calibration reads a few batches), then whole passes in other
    # orders (epochs) on the same worker processes.
    first = next(iter_batches(data, workers=1))
    assert first[0].shape == (4, 3, 12, 10)
    for seed in (3, 4):
        inline, loaded = batches(0, seed), batches(1, seed)
        assert len(inline) == len(loaded) == 4  # 14 training images in batches of 4
        for (xa, ya), (xb, yb) in zip(inline, loaded, strict=True):
            assert torch.equal(ya, yb) and torch.allclose(xa, xb)


def test_an_extracted_archive_lives_as_long_as_its_samples(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(tree.rglob("*.png")):
            zf.write(path, path.relative_to(tree).as_posix())
    data = load_task_data(str(archive))
    assert isinstance(data.x_train, Samples)
    folder = Path(data.x_train.reader.paths[0]).parents[1]  # type: ignore[attr-defined]
    assert folder.is_dir() and data.x_train[:].shape == (len(data.y_train), 3, 12, 10)
    del data
    gc.collect()
    assert not folder.exists()


def test_a_file_that_breaks_after_its_header_names_itself_when_read(tmp_path: Path) -> None:
    tree = _tree(tmp_path / "tree")
    broken = tree / "ant" / "0.png"
    broken.write_bytes(broken.read_bytes()[:60])  # header intact, pixels cut off
    # The statistics pass reads the training split; the test split is read when evaluated.
    with pytest.raises(DataError, match=r"unreadable image ant/0\.png"):
        data = load_task_data(str(tree))
        data.x_test[:]
