"""POST/GET /v1/datasets: .npz and ImageFolder archives inspected in the API process."""

from __future__ import annotations

import io
import tarfile
import zipfile
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.api.api_helpers import Api, npz_bytes

PROBLEM = "application/problem+json"


def upload(api: Api, filename: str, data: bytes, **fields: str) -> Any:
    return api.client.post(
        "/v1/datasets", files={"file": (filename, data)}, data=fields, headers=api.admin
    )


def png(size: tuple[int, int] = (12, 10), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def tar_of(members: dict[str, bytes], symlink: tuple[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if symlink:
            link = tarfile.TarInfo(symlink[0])
            link.type = tarfile.SYMTYPE
            link.linkname = symlink[1]
            tf.addfile(link)
    return buffer.getvalue()


def test_npz_channels_first(api: Api) -> None:
    x = np.random.default_rng(0).random((30, 1, 8, 8), dtype=np.float32)
    y = np.arange(30) % 3
    response = upload(api, "digits.npz", npz_bytes(x=x, y=y), name="digits")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "digits" and body["format"] == "npz"
    assert body["samples"] == 30 and body["classes"] == ["0", "1", "2"]
    assert body["input_shape"] == [1, 8, 8]
    assert len(body["sha256"]) == 64 and api.storage.exists(body["sha256"])
    assert response.headers["location"] == f"/v1/datasets/{body['id']}"

    assert api.client.get(f"/v1/datasets/{body['id']}", headers=api.admin).json() == body
    listing = api.client.get("/v1/datasets", headers=api.admin).json()
    assert listing["count"] == 1 and listing["data"][0]["id"] == body["id"]


def test_npz_channels_last_grey_and_test_split(api: Api) -> None:
    rng = np.random.default_rng(0)
    nhwc = npz_bytes(x=rng.random((10, 16, 16, 3)), y=np.arange(10) % 2)
    assert upload(api, "a.npz", nhwc).json()["input_shape"] == [3, 16, 16]
    grey = npz_bytes(
        x=rng.integers(0, 255, (10, 28, 28), dtype=np.uint8),
        y=np.arange(10) % 2,
        x_test=rng.integers(0, 255, (4, 28, 28), dtype=np.uint8),
        y_test=np.arange(4) % 2,
    )
    response = upload(api, "b.npz", grey)
    assert response.status_code == 201
    assert response.json()["input_shape"] == [1, 28, 28]
    assert response.json()["samples"] == 10


BAD_NPZ = {
    "no y": {"x": np.zeros((4, 1, 2, 2))},
    "lengths differ": {"x": np.zeros((4, 1, 2, 2)), "y": np.array([0, 1, 0])},
    "nan": {"x": np.full((4, 1, 2, 2), np.nan), "y": np.array([0, 1, 0, 1])},
    "one class": {"x": np.zeros((4, 1, 2, 2)), "y": np.zeros(4, dtype=int)},
    "fractional labels": {"x": np.zeros((4, 1, 2, 2)), "y": np.array([0.5, 1.0, 0.0, 1.0])},
    "strings": {"x": np.array([["a"]] * 4), "y": np.array([0, 1, 0, 1])},
    "bad rank": {"x": np.zeros((4, 5)), "y": np.array([0, 1, 0, 1])},
    "objects": {"x": np.array([{}, {}, {}, {}], dtype=object), "y": np.array([0, 1, 0, 1])},
    "test without labels": {
        "x": np.zeros((4, 1, 2, 2)),
        "y": np.array([0, 1, 0, 1]),
        "x_test": np.zeros((2, 1, 2, 2)),
    },
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_npz_is_422(api: Api, case: str) -> None:
    arrays = BAD_NPZ[case]
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    response = upload(api, "bad.npz", buffer.getvalue())
    assert response.status_code == 422, (case, response.text)
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["loc"] == ["body", "file"]


def test_imagefolder_zip_with_wrapper_and_train_split(api: Api) -> None:
    members = {
        "pets/train/cat/1.png": png((12, 10)),
        "pets/train/cat/2.png": png((12, 10)),
        "pets/train/dog/1.png": png((12, 10)),
        "pets/test/cat/9.png": png((12, 10)),
    }
    response = upload(api, "pets.zip", zip_of(members))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["format"] == "zip"
    assert body["classes"] == ["cat", "dog"] and body["samples"] == 3
    assert body["input_shape"] == [3, 10, 12]


def test_imagefolder_zip_from_a_mac(api: Api) -> None:
    # What Finder's "Compress" makes: a wrapper folder, resource forks and .DS_Store files,
    # which the worker's loader skips; so does the inspection.
    members = {
        "pets/cat/1.png": png(),
        "pets/cat/2.png": png(),
        "pets/dog/1.png": png(),
        "pets/.DS_Store": b"\x00",
        "__MACOSX/pets/cat/._1.png": b"\x00\x05\x16\x07",
    }
    response = upload(api, "pets.zip", zip_of(members))
    assert response.status_code == 201, response.text
    assert response.json()["classes"] == ["cat", "dog"]
    assert response.json()["samples"] == 3


def test_files_next_to_the_class_folders_are_not_samples(api: Api) -> None:
    members = {"cat/1.png": png(), "cat/2.png": png(), "dog/1.png": png(), "README.md": b"about"}
    response = upload(api, "pets.zip", zip_of(members))
    assert response.status_code == 201, response.text
    assert response.json()["samples"] == 3


def test_npz_whole_number_float_labels_are_accepted(api: Api) -> None:
    data = npz_bytes(x=np.zeros((4, 3, 2, 2)), y=np.array([0.0, 1.0, 2.0, 1.0]))
    response = upload(api, "f.npz", data)
    assert response.status_code == 201, response.text
    assert response.json()["classes"] == ["0", "1", "2"]
    assert response.json()["input_shape"] == [3, 2, 2]


def test_imagefolder_tar_gz_grey(api: Api) -> None:
    members = {f"{c}/{i}.png": png((8, 8), "L") for c in ("a", "b", "c") for i in range(2)}
    response = upload(api, "letters.tar.gz", tar_of(members))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["format"] == "tar.gz" and body["classes"] == ["a", "b", "c"]
    assert body["samples"] == 6 and body["input_shape"] == [1, 8, 8]


@pytest.mark.parametrize(
    ("name", "archive"),
    [
        ("dotdot.zip", zip_of({"a/1.png": png(), "../b/1.png": png()})),
        ("abs.zip", zip_of({"a/1.png": png(), "/etc/b/1.png": png()})),
        ("dotdot.tar.gz", tar_of({"a/1.png": png(), "x/../../b/1.png": png()})),
        ("link.tar.gz", tar_of({"a/1.png": png(), "b/1.png": png()}, ("b/2.png", "/etc/passwd"))),
        ("oneclass.zip", zip_of({"a/1.png": png(), "a/2.png": png()})),
        ("loose.zip", zip_of({"1.png": png(), "a/1.png": png()})),  # one class left
        ("textfile.zip", zip_of({"a/1.png": png(), "b/1.png": png(), "b/notes.txt": b"x"})),
        ("noimages.zip", zip_of({"a/readme.txt": b"x", "b/readme.txt": b"y"})),
        ("broken.zip", zip_of({"a/1.png": b"not a png", "b/1.png": png()})),
        ("bomb.zip", zip_of({"a/1.png": png(), "b/zeros.bin": bytes(8 * 1024 * 1024)})),
        ("notazip.zip", b"hello"),
        ("notatar.tar.gz", b"hello"),
        ("data.csv", b"a,b\n1,2\n"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_hostile_or_broken_archives_are_422(api: Api, name: str, archive: bytes) -> None:
    response = upload(api, name, archive)
    assert response.status_code == 422, (name, response.text)
    assert response.json()["errors"][0]["loc"] == ["body", "file"]


def test_the_operators_dataset_limits_decide_what_is_accepted(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = {f"{c}/{i}.png": png() for c in ("a", "b") for i in range(2)}
    monkeypatch.setattr(api.settings, "max_dataset_files", 3)
    response = upload(api, "many.zip", zip_of(members))
    assert response.status_code == 422
    assert "members" in response.json()["detail"]
    monkeypatch.setattr(api.settings, "max_dataset_files", 4)
    monkeypatch.setattr(api.settings, "max_dataset_bytes", 100)
    response = upload(api, "big.zip", zip_of(members))
    assert response.status_code == 422 and "more than 100 bytes" in response.json()["detail"]
    monkeypatch.setattr(api.settings, "max_dataset_bytes", 10**6)  # raised: accepted
    assert upload(api, "fine.zip", zip_of(members)).status_code == 201


def test_dataset_needs_multipart_a_file_and_a_token(api: Api) -> None:
    assert api.client.post("/v1/datasets", json={"x": 1}, headers=api.admin).status_code == 415
    no_file = api.client.post("/v1/datasets", data={"name": "x"}, files={}, headers=api.admin)
    assert no_file.status_code in (415, 422)
    only_field = api.client.post(
        "/v1/datasets",
        files={"name": (None, "x")},
        headers=api.admin,
    )
    assert only_field.status_code == 422
    assert only_field.json()["errors"][0]["loc"] == ["body", "file"]
    assert api.client.post("/v1/datasets", files={"file": ("a.npz", b"x")}).status_code == 401
    assert api.client.get("/v1/datasets/dst_nope", headers=api.admin).status_code == 404


def test_file_name_must_be_sane(api: Api) -> None:
    data = npz_bytes(x=np.zeros((4, 1, 2, 2)), y=np.array([0, 1, 0, 1]))
    too_long = upload(api, "x" * 300 + ".npz", data)
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["loc"] == ["body", "file"]
    # Directories in a client's file name are dropped, not stored.
    nested = upload(api, "../../etc/data.npz", data)
    assert nested.status_code == 201 and nested.json()["filename"] == "data.npz"
