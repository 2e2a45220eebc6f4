"""The API's upload check and the engine's loader give the same verdict on the same file.

Each odd or hostile dataset goes through both doors: `service.api.validation.datasets`
(what `POST /v1/datasets` runs, torch-free) and `pruning.data.load_task_data` (what the
worker runs). Both must accept it, with the same classes and image size, or both refuse it
for the same reason. Most cases below are ones where the two sides once disagreed, when
each had its own copy of the rules: an upload accepted and the job failing later, or an
upload refused that the engine reads fine.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeprune.contracts.dataset_rules import DEFAULT_LIMITS, ArchiveLimits
from pruning.data import DataError, load_task_data
from service.api.errors import InvalidUpload
from service.api.validation.datasets import dataset_format, inspect_dataset
from tests.security.hostile import (
    bomb_png,
    images,
    npz,
    png,
    tar_of,
    zip_of,
    zip_with_a_duplicate,
)


@dataclass(frozen=True)
class Accepted:
    classes: list[str]
    samples: tuple[int, ...]  # the API's count; the engine's is one of these
    size: tuple[int, int]


def api_verdict(path: Path, limits: ArchiveLimits) -> Accepted | str:
    try:
        info = inspect_dataset(path, dataset_format(path.name), limits)
    except InvalidUpload as exc:
        return exc.detail
    return Accepted(info.classes, (info.samples,), (info.input_shape[1], info.input_shape[2]))


def engine_verdict(path: Path, limits: ArchiveLimits) -> Accepted | str:
    try:
        data = load_task_data(str(path), archive_limits=limits)
    except DataError as exc:
        return str(exc)
    train, test = len(data.y_train), len(data.y_test)
    # The API counts the training samples: all of them when the split is held out later.
    return Accepted(data.classes, (train, train + test), data.input_shape[1:])


def assert_same_verdict(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> Accepted | str:
    api, engine = api_verdict(path, limits), engine_verdict(path, limits)
    if isinstance(api, Accepted) or isinstance(engine, Accepted):
        assert isinstance(api, Accepted), f"the API refused what the engine reads: {api}"
        assert isinstance(engine, Accepted), f"the API accepted what the engine refuses: {engine}"
        assert api.classes == engine.classes
        assert api.samples[0] in engine.samples
        assert api.size == engine.size
        return api
    # Both refused: for the same reason, in the same words (the engine names the file first).
    if api.startswith("unreadable image"):  # Pillow's own words name the file differently
        assert api.split(":")[0] in engine, (api, engine)
    else:
        assert engine.endswith(api), (api, engine)
    return api


def plain_tar(members: dict[str, bytes], *, top: str = "") -> bytes:
    """An uncompressed tar (whatever its name says); `top` adds a folder entry first."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        if top:
            folder = tarfile.TarInfo(top)
            folder.type = tarfile.DIRTYPE
            tf.addfile(folder)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def npz_with_member(name: str) -> bytes:
    buffer = io.BytesIO(npz(x=np.zeros((6, 1, 4, 4), np.float32), y=np.arange(6) % 2))
    with zipfile.ZipFile(buffer, "a") as zf:
        zf.writestr(name, b"\x93NUMPY")
    return buffer.getvalue()


def _split(train: int = 2, test: dict[str, bytes] | None = None) -> dict[str, bytes]:
    return {
        **{f"train/{c}/{i}.png": png() for c in ("cat", "dog") for i in range(train)},
        **(test if test is not None else {f"test/{c}/9.png": png() for c in ("cat", "dog")}),
    }


X = np.zeros((6, 1, 4, 4), np.float32)
Y = np.arange(6) % 2
BIG = X.astype(np.float64)
BIG[0, 0, 0, 0] = 1e300

# name -> (file name, bytes, None when both accept it, else a word of the shared reason)
CASES: dict[str, tuple[str, Callable[[], bytes], str | None]] = {
    "zip from a mac": ("d.zip", lambda: zip_of({
        **{f"pets/{k}": v for k, v in images().items()},
        "pets/.DS_Store": b"\0", "__MACOSX/pets/cat/._0.png": b"\0",
    }), None),
    "readme beside the classes": ("d.zip", lambda: zip_of({**images(), "README.md": b"hi"}), None),
    "readme inside the wrapper": (
        "d.zip", lambda: zip_of({**{f"pets/{k}": v for k, v in images().items()},
                                 "pets/README.md": b"hi"}), "not an image",
    ),
    "wrapper beside an empty folder": (
        "d.zip", lambda: zip_of({**{f"data/{k}": v for k, v in images().items()}, "other/": b""}),
        "no training sample",
    ),
    "hidden folder beside the wrapper": (
        "d.zip", lambda: zip_of({**{f"pets/{k}": v for k, v in images().items()},
                                 ".cache/x.png": png()}), None,
    ),
    "class folder holding only .DS_Store": (
        "d.zip", lambda: zip_of({**images(), "bird/.DS_Store": b"\0"}), "bird have no training",
    ),
    "images nested inside a class": (
        "d.zip", lambda: zip_of({"cat/a/0.png": png(), "cat/b/0.png": png(), **images(("dog",))}),
        None,
    ),
    "odd suffix on a real image": (
        "d.zip", lambda: zip_of({**images(), "dog/2.dat": png()}), "not an image"
    ),
    "stream name": ("d.zip", lambda: zip_of({**images(), "ab:c/0.png": png()}), "absolute path"),
    "name used twice": ("d.zip", lambda: zip_with_a_duplicate(images(), "dog/1.png"), "twice"),
    "file and folder of one name": (
        "d.zip", lambda: zip_of({"cat": b"x", **images()}), "both a file and a folder"
    ),
    "train only": ("d.zip", lambda: zip_of(_split(test={})), None),
    "val as the test split": (
        "d.zip", lambda: zip_of(_split(test={f"val/{c}/9.png": png() for c in ("cat", "dog")})),
        None,
    ),
    "one image a class beside a test split": ("d.zip", lambda: zip_of(_split(train=1)), None),
    "test folder of empty class folders": (
        "d.zip", lambda: zip_of(_split(test={"test/": b"", "test/cat/": b""})), "holds no images"
    ),
    "an empty extra class in test": (
        "d.zip", lambda: zip_of(_split(test={"test/cat/9.png": png(), "test/bird/": b""})),
        "bird have no training",
    ),
    "a text file in a test class": (
        "d.zip", lambda: zip_of(_split(test={"test/cat/notes.txt": b"hi"})), "not an image"
    ),
    "corrupt first image": (
        "d.zip", lambda: zip_of({**images(), "cat/0.png": b"\x89PNG nope"}), "unreadable image"
    ),
    "decompression bomb first": (
        "d.zip", lambda: zip_of({**images(), "cat/0.png": bomb_png()}), "decompression bomb"
    ),
    "grey images": ("d.tar.gz", lambda: tar_of({f"{c}/{i}.png": png(mode="L")
                                                for c in ("a", "b") for i in range(2)}), None),
    "tar of ./ names": (
        "d.tar.gz", lambda: tar_of({f"./{k}": v for k, v in images().items()}), None
    ),
    "uncompressed tar named .tar.gz": (
        "d.tar.gz", lambda: plain_tar(images(), top="./"), None
    ),
    "npz with negative labels": ("d.npz", lambda: npz(x=X, y=Y * 2 - 1), None),
    "npz test images of another size": (
        "d.npz", lambda: npz(x=X, y=Y, x_test=np.zeros((2, 1, 8, 8)), y_test=Y[:2]), None
    ),
    "npz test images of other channels": (
        "d.npz", lambda: npz(x=X, y=Y, x_test=np.zeros((2, 3, 4, 4)), y_test=Y[:2]), "channel"
    ),
    "npz channels last": ("d.npz", lambda: npz(x=np.zeros((6, 4, 4, 3)), y=Y), None),
    "npz of zero-height images": ("d.npz", lambda: npz(x=np.zeros((6, 1, 0, 4)), y=Y), "empty"),
    "npz beyond float32": ("d.npz", lambda: npz(x=BIG, y=Y), "infinite"),
    "npz label beyond int64": ("d.npz", lambda: npz(x=X, y=Y * 1e20), "integer class labels"),
    "npz member outside": ("d.npz", lambda: npz_with_member("../evil.npy"), "outside"),
    "npz labels only in test": (
        "d.npz", lambda: npz(x=X, y=Y, x_test=X[:2], y_test=np.array([5, 5])), "no training"
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_doors_give_the_same_verdict(tmp_path: Path, case: str) -> None:
    filename, make, refused = CASES[case]
    path = tmp_path / filename
    path.write_bytes(make())
    verdict = assert_same_verdict(path)
    if refused is None:
        assert isinstance(verdict, Accepted), verdict
    else:
        assert isinstance(verdict, str) and refused in verdict, verdict


@pytest.mark.parametrize("filename", ["d.zip", "d.tar.gz", "d.npz"])
def test_the_operators_limits_are_the_same_at_both_doors(tmp_path: Path, filename: str) -> None:
    path = tmp_path / filename
    if filename == "d.npz":
        path.write_bytes(npz(x=X, y=Y, x_test=X[:2], y_test=Y[:2]))  # four members
    else:
        path.write_bytes((zip_of if filename == "d.zip" else tar_of)(images()))  # four files
    assert isinstance(assert_same_verdict(path, ArchiveLimits(members=4)), Accepted)
    assert "more than 3 members" in str(assert_same_verdict(path, ArchiveLimits(members=3)))
    tight = ArchiveLimits(expanded_bytes=100)
    assert "more than 100 bytes" in str(assert_same_verdict(path, tight))


SEGMENTS = st.sampled_from(["train", "test", "val", "cat", "dog", "pets", ".cache", "__MACOSX"])
LEAVES = st.sampled_from(["0.png", "1.png", "2.jpg", "notes.txt", ".DS_Store"])
FILES = st.lists(
    st.builds(lambda dirs, leaf: "/".join([*dirs, leaf]), st.lists(SEGMENTS, max_size=3), LEAVES),
    min_size=1,
    max_size=12,
    unique=True,
)
FOLDERS = st.lists(st.lists(SEGMENTS, min_size=1, max_size=3).map(lambda p: "/".join(p) + "/"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=FILES, folders=FOLDERS)
def test_any_tree_gets_the_same_verdict_at_both_doors(files: list[str], folders: list[str]) -> None:
    members = {name: b"" for name in folders}
    members.update({name: png() if name.endswith(("png", "jpg")) else b"x" for name in files})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tree.zip"
        path.write_bytes(zip_of(members))
        assert_same_verdict(path)


@settings(max_examples=40, deadline=None)
@given(
    labels=st.lists(st.integers(-2, 3), min_size=1, max_size=12),
    test_labels=st.none() | st.lists(st.integers(-2, 3), min_size=0, max_size=4),
)
def test_any_labels_get_the_same_verdict_at_both_doors(
    labels: list[int], test_labels: list[int] | None
) -> None:
    arrays = {"x": np.zeros((len(labels), 1, 2, 2), np.float32), "y": np.array(labels)}
    if test_labels is not None:
        arrays["x_test"] = np.zeros((len(test_labels), 1, 2, 2), np.float32)
        arrays["y_test"] = np.array(test_labels, dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "labels.npz"
        path.write_bytes(npz(**arrays))
        assert_same_verdict(path)
