"""Edge task data: every source format, its errors, splits, normalisation and augmentation."""

from __future__ import annotations

import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pruning.data import (
    DataError,
    TaskData,
    inspect_dataset,
    iterate_batches,
    load_task_data,
)
from pruning.data.archives import ArchiveLimits
from pruning.data.augmentation import background_fill, pad_for, resolve_augment
from pruning.data.batches import shift_and_mirror
from pruning.data.prepare import split_indices


def _assert_normalised(data: TaskData) -> None:
    x_train, x_test = data.x_train[:], data.x_test[:]  # read lazily loaded samples
    per_channel = x_train.transpose(0, 1).reshape(x_train.shape[1], -1)
    assert torch.allclose(per_channel.mean(1), torch.zeros(len(per_channel)), atol=1e-4)
    assert torch.allclose(per_channel.std(1, correction=0), torch.ones(len(per_channel)), atol=1e-3)
    assert x_train.dtype == x_test.dtype == torch.float32
    assert data.y_train.dtype == data.y_test.dtype == torch.int64


def test_builtin_digits() -> None:
    data = load_task_data("builtin:digits")
    assert data.x_train.shape[1:] == data.x_test.shape[1:] == (1, 32, 32)
    assert data.input_shape == (1, 32, 32) and data.classes == [str(i) for i in range(10)]
    assert len(data.y_train) + len(data.y_test) == 1797
    assert abs(len(data.y_test) - 0.2 * 1797) < 10
    assert set(data.y_test.tolist()) == set(range(10))  # stratified
    _assert_normalised(data)
    again = load_task_data("builtin:digits")
    assert torch.equal(again.y_test, data.y_test)  # deterministic for the seed
    other = load_task_data("builtin:digits", seed=1)
    assert not torch.equal(other.x_test, data.x_test)
    with pytest.raises(DataError, match="in_channels=3"):
        load_task_data("builtin:digits", in_channels=3)
    assert load_task_data("builtin:digits", input_size=(16, 16)).input_shape == (1, 16, 16)


# ---------------------------------------------------------------------------------------------
# .npz


def _npz(path: Path, **arrays: np.ndarray) -> str:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return str(path)


def _labels(n: int, classes: int = 3) -> np.ndarray:
    return np.arange(n) % classes


@pytest.mark.parametrize(
    ("shape", "dtype", "channels"),
    [
        ((30, 12, 10), np.uint8, 1),
        ((30, 12, 10, 3), np.uint8, 3),
        ((30, 12, 10, 1), np.float32, 1),
        ((30, 3, 12, 10), np.float64, 3),
        ((30, 2, 12, 10), np.float32, 2),
    ],
)
def test_npz_layouts(tmp_path: Path, shape: tuple[int, ...], dtype: type, channels: int) -> None:
    rng = np.random.default_rng(0)
    x = (rng.random(shape) * 255).astype(dtype)
    data = load_task_data(_npz(tmp_path / "d.npz", x=x, y=_labels(30)))
    assert data.input_shape == (channels, 12, 10)
    assert len(data.y_train) == 24 and len(data.y_test) == 6
    _assert_normalised(data)


def test_npz_channel_order_is_kept(tmp_path: Path) -> None:
    x = np.zeros((6, 4, 4, 3), np.uint8)
    x[..., 2] = 255  # only the last channel lit, channels-last
    x[::2, :, :, 0] = 100
    data = load_task_data(_npz(tmp_path / "d.npz", x=x, y=_labels(6, 2)), test_fraction=0.5)
    assert data.mean[2] == pytest.approx(1.0) and data.mean[1] == 0.0


def test_npz_with_test_split_resize_and_arbitrary_labels(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((8, 8, 8)).astype(np.float32)
    y = np.array([3, 7, 3, 7, 3, 7, 9, 9])
    path = _npz(tmp_path / "d.npz", x=x, y=y, x_test=x[:3], y_test=y[:3])
    data = load_task_data(path, input_size=(16, 16))
    assert data.classes == ["3", "7", "9"]
    assert data.y_train.tolist() == [0, 1, 0, 1, 0, 1, 2, 2] and data.y_test.tolist() == [0, 1, 0]
    assert data.x_test.shape == (3, 1, 16, 16)
    assert inspect_dataset(path) == {
        "samples": 11, "train_samples": 8, "test_samples": 3,
        "classes": ["3", "7", "9"], "num_classes": 3, "input_shape": [1, 8, 8],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((5, 4, 4)), "y": _labels(4)}, "x has 5 samples but y has 4"),
        ({"x": np.full((6, 4, 4), np.nan), "y": _labels(6)}, "NaN"),
        ({"x": np.full((6, 4, 4), np.inf), "y": _labels(6)}, "NaN or infinite"),
        ({"x": np.zeros((6, 4, 4)), "y": np.zeros(6, int)}, "at least 2"),
        ({"x": np.array([["a"] * 4] * 6), "y": _labels(6)}, "must hold numbers"),
        ({"x": np.zeros((6, 4, 4)), "y": np.linspace(0, 1, 6)}, "integer class labels"),
        ({"y": _labels(6)}, "has no x array"),
        ({"x": np.zeros((6, 4, 4)), "y": _labels(6), "x_test": np.zeros((2, 4, 4))}, "together"),
        ({"x": np.zeros((6, 4)), "y": _labels(6)}, r"must be \(N, C, H, W\)"),
        ({"x": np.zeros((2, 4, 4)), "y": np.array([0, 1])}, "no training sample|too few"),
        ({"x": np.zeros((1, 4, 4)), "y": np.array([0])}, "at least 2"),
    ],
)
def test_npz_errors(tmp_path: Path, arrays: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(DataError, match=message):
        load_task_data(_npz(tmp_path / "bad.npz", **arrays))


def test_npz_object_arrays_are_refused_without_unpickling(tmp_path: Path) -> None:
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([object()] * 6, dtype=object), y=_labels(6))
    with pytest.raises(DataError, match="object arrays"):
        load_task_data(str(path))


def test_npz_channel_mismatch_is_an_error(tmp_path: Path) -> None:
    path = _npz(tmp_path / "d.npz", x=np.zeros((6, 4, 4, 3), np.uint8), y=_labels(6))
    with pytest.raises(DataError, match="3 channel"):
        load_task_data(path, in_channels=1)


def test_each_class_needs_a_train_sample(tmp_path: Path) -> None:
    x = np.zeros((4, 4, 4))
    path = _npz(
        tmp_path / "d.npz", x=x, y=np.array([0, 0, 1, 1]), x_test=x[:1], y_test=np.array([2])
    )
    with pytest.raises(DataError, match="class\\(es\\) 2 have no training sample"):
        load_task_data(path)


def test_unknown_sources(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_task_data(str(tmp_path / "nope.npz"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="unsupported"):
        load_task_data(str(tmp_path / "notes.txt"))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError):
        load_task_data(str(tmp_path / "bad.npz"))


# ---------------------------------------------------------------------------------------------
# CIFAR-10 python format


def _write_cifar(root: Path, per_batch: int = 4, protocol: int = 2) -> None:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [b"airplane", b"automobile", b"bird"]
    with (root / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": per_batch}, f, protocol=2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        record = {
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": [i % 3 for i in range(per_batch)],
            b"batch_label": name.encode(),
        }
        with (root / name).open("wb") as f:
            pickle.dump(record, f, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_folder_and_its_parent(tmp_path: Path, protocol: int) -> None:
    _write_cifar(tmp_path / "cifar-10-batches-py", protocol=protocol)
    for source in (tmp_path, tmp_path / "cifar-10-batches-py"):
        data = load_task_data(str(source))
        assert data.classes == ["airplane", "automobile", "bird"]
        assert data.x_train.shape == (20, 3, 32, 32) and data.x_test.shape == (4, 3, 32, 32)
        assert data.y_test.tolist() == [0, 1, 2, 0]
        _assert_normalised(data)


def test_cifar_pickle_with_code_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cifar"
    _write_cifar(root)
    target = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str, str]]:
            return (open, (str(target), "w"))

    with (root / "test_batch").open("wb") as f:
        pickle.dump({b"data": Evil(), b"labels": [0]}, f)
    with pytest.raises(DataError, match="refusing to load global"):
        load_task_data(str(root))
    assert not target.exists()


# ---------------------------------------------------------------------------------------------
# ImageFolder trees, as folders and archives


def _png(color: tuple[int, int, int], size: tuple[int, int] = (10, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _tree_files(split: bool) -> dict[str, bytes]:
    files = {}
    for c, (name, color) in enumerate([("cat", (200, 10, 10)), ("dog", (10, 200, 10))]):
        for i in range(4):
            shade = (color[0], color[1], 40 * i)
            prefix = ("test/" if i == 3 else "train/") if split else ""
            files[f"{prefix}{name}/{c}_{i}.png"] = _png(shade)
    return files


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def test_image_folder_without_splits(tmp_path: Path) -> None:
    root = _write_tree(tmp_path / "tree", _tree_files(split=False))
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "README.txt").write_text("stray file at the root")
    data = load_task_data(str(root), test_fraction=0.25)
    assert data.classes == ["cat", "dog"] and data.input_shape == (3, 8, 10)
    assert len(data.y_train) == 6 and sorted(data.y_test.tolist()) == [0, 1]
    _assert_normalised(data)
    gray = load_task_data(str(root), in_channels=1, input_size=(16, 16))
    assert gray.input_shape == (1, 16, 16)


def test_image_folder_with_train_and_test(tmp_path: Path) -> None:
    data = load_task_data(str(_write_tree(tmp_path / "wrapper" / "set", _tree_files(split=True))))
    assert data.classes == ["cat", "dog"]
    assert len(data.y_train) == 6 and data.y_test.tolist() == [0, 1]
    only_train = {k: v for k, v in _tree_files(split=True).items() if k.startswith("train/")}
    data = load_task_data(str(_write_tree(tmp_path / "only", only_train)), test_fraction=0.34)
    assert data.classes == ["cat", "dog"] and len(data.y_train) + len(data.y_test) == 6


def test_image_folder_mixed_sizes_default_to_32(tmp_path: Path) -> None:
    files = _tree_files(split=False)
    files["dog/big.png"] = _png((1, 2, 3), size=(20, 20))
    data = load_task_data(str(_write_tree(tmp_path / "tree", files)))
    assert data.input_shape == (3, 32, 32)


def test_unreadable_image_is_named(tmp_path: Path) -> None:
    files = _tree_files(split=False)
    files["dog/broken.png"] = b"\x89PNG not really"
    with pytest.raises(DataError, match=r"unreadable image dog/broken\.png"):
        load_task_data(str(_write_tree(tmp_path / "tree", files)))


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return path


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tf.addfile(info, io.BytesIO(content))
    return path


def test_image_folder_archives(tmp_path: Path) -> None:
    files = {f"mydata/{k}": v for k, v in _tree_files(split=True).items()}
    for path in (
        _zip(tmp_path / "d.zip", files),
        _tar(tmp_path / "d.tar.gz", files),
        _tar(tmp_path / "d.tgz", files),
    ):
        data = load_task_data(str(path))
        assert data.classes == ["cat", "dog"] and data.input_shape == (3, 8, 10)
        assert len(data.y_train) == 6 and len(data.y_test) == 2


def test_zip_slip_is_refused_and_nothing_escapes(tmp_path: Path) -> None:
    inner = tmp_path / "upload"
    inner.mkdir()
    files = _tree_files(split=False) | {"../evil.txt": b"gotcha"}
    with pytest.raises(DataError, match=r"member '\.\./evil\.txt' points outside"):
        load_task_data(str(_zip(inner / "d.zip", files)))
    assert not (tmp_path / "evil.txt").exists() and not (inner / "evil.txt").exists()
    with pytest.raises(DataError, match="absolute"):
        load_task_data(str(_zip(inner / "abs.zip", {"/tmp/evil.txt": b"x"})))


def test_tar_links_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "link.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        info = tarfile.TarInfo("cat/a.png")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="is a link"):
        load_task_data(str(path))


def test_archive_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = _zip(tmp_path / "bomb.zip", {"cat/zeros.png": bytes(20 * 1024**2)})
    with pytest.raises(DataError, match="archive bomb"):
        load_task_data(str(bomb))
    few = ArchiveLimits(members=3)
    many = _zip(tmp_path / "many.zip", _tree_files(split=False))
    with pytest.raises(DataError, match="more than 3 members"):
        load_task_data(str(many), archive_limits=few)
    with pytest.raises(DataError, match="more than 3 members"):
        load_task_data(
            str(_tar(tmp_path / "many.tar.gz", _tree_files(split=False))), archive_limits=few
        )
    small = ArchiveLimits(members=100, expanded_bytes=100)
    with pytest.raises(DataError, match=r"more than 100 bytes.*EDGEPRUNE_MAX_DATASET_BYTES"):
        load_task_data(
            str(_zip(tmp_path / "big.zip", _tree_files(split=False))), archive_limits=small
        )
    # An operator who raises the limits gets the same archive through.
    assert len(load_task_data(str(many), archive_limits=ArchiveLimits(members=8)).classes) == 2


# ---------------------------------------------------------------------------------------------
# Batches and augmentation


def test_batches_cover_everything_once() -> None:
    x, y = torch.arange(10.0).reshape(10, 1, 1, 1), torch.arange(10)
    batches = list(
        iterate_batches(
            x, y, 4, shuffle=True, augment=False, generator=torch.Generator().manual_seed(0)
        )
    )
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    assert all(torch.equal(bx.flatten(), by.float()) for bx, by in batches)


def test_augmentation_is_shift_and_mirror_and_deterministic() -> None:
    x = torch.randn(64, 3, 8, 8)
    y = torch.arange(64)

    def run(seed: int) -> list[torch.Tensor]:
        gen = torch.Generator().manual_seed(seed)
        return [
            bx for bx, _ in iterate_batches(x, y, 16, shuffle=False, augment=True, generator=gen)
        ]

    first, again, other = run(0), run(0), run(1)
    assert all(b.shape == (16, 3, 8, 8) for b in first)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    out = torch.cat(first)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))  # 1/8 of an 8-pixel side
    # Every output is some crop of the zero-padded input, possibly mirrored.
    for i in range(64):
        crops = [padded[i, :, r : r + 8, c : c + 8] for r in range(3) for c in range(3)]
        assert any(torch.equal(out[i], crop) or torch.equal(out[i], crop.flip(2)) for crop in crops)
    assert not torch.equal(out, x)


def test_the_shift_scales_with_the_image_and_pads_with_the_background() -> None:
    assert [pad_for(s, s) for s in (8, 32, 64, 224)] == [1, 4, 8, 28]
    x = torch.zeros(200, 2, 32, 32)
    fill = torch.tensor([-1.5, 2.0])
    out = shift_and_mirror(x, torch.Generator().manual_seed(0), fill)
    # Shifts reach 4 pixels: some output rows and columns are all padding, never more than 4.
    for channel, level in enumerate(fill.tolist()):
        padding = out[:, channel] == level
        assert padding.any() and not (out[:, channel] == 0).all()
        assert int(padding.all(dim=2).sum(dim=1).max()) == 4  # whole padded rows per image
    assert set(out.unique().tolist()) == {-1.5, 0.0, 2.0}


def test_the_default_augmentation_follows_the_kind_of_data(tmp_path: Path) -> None:
    assert load_task_data("builtin:digits").kind == "digits"
    floats = np.random.default_rng(0).random((20, 6, 6)).astype(np.float32)
    pixels = (floats * 255).astype(np.uint8)
    assert load_task_data(_npz(tmp_path / "f.npz", x=floats, y=_labels(20))).kind == "arrays"
    assert load_task_data(_npz(tmp_path / "u.npz", x=pixels, y=_labels(20))).kind == "images"
    assert [resolve_augment(None, k) for k in ("images", "digits", "arrays")] == [
        True, False, False,
    ]  # fmt: skip
    assert resolve_augment(True, "arrays") and not resolve_augment(False, "images")
    fill = background_fill([0.5, 0.25], [0.25, 0.5])
    assert fill.tolist() == [-2.0, -0.5]  # a black pixel, normalised


@settings(max_examples=50, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=2, max_size=60),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 3),
)
def test_split_partitions_and_keeps_every_class_in_train(
    labels: list[int], fraction: float, seed: int
) -> None:
    y = torch.tensor(labels)
    if max(labels.count(v) for v in set(labels)) < 2:
        with pytest.raises(DataError, match="too few samples"):
            split_indices(y, fraction, seed, "s")
        return
    train, test = split_indices(y, fraction, seed, "s")
    assert sorted(torch.cat([train, test]).tolist()) == list(range(len(labels)))
    assert len(test) >= 1 and set(y[train].tolist()) == set(labels)
    again = split_indices(y, fraction, seed, "s")
    assert torch.equal(again[0], train) and torch.equal(again[1], test)
