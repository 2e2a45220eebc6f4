"""POST/GET /v1/models without a worker: cheap format checks, storage, the pending answer."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api.main import create_app
from tests.api.api_helpers import Api, make_settings

PROBLEM = "application/problem+json"
FIELDS = {"arch": "vgg11", "num_classes": "10", "input_shape": "1,32,32"}


def torch_like_zip() -> bytes:
    """The layout torch.save writes (a zip with <name>/data.pkl); not loadable, which only a
    worker could tell."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("model/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("model/version", b"3\n")
    return buffer.getvalue()


def safetensors_bytes(header: Any = None, data: bytes = b"\x00" * 16) -> bytes:
    header = header or {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def upload(api: Api, filename: str, data: bytes, **fields: str) -> Any:
    return api.client.post(
        "/v1/models",
        files={"file": (filename, data)},
        data={**FIELDS, **fields},
        headers=api.admin,
    )


@pytest.mark.parametrize(
    ("filename", "data"),
    [
        ("model.pt", torch_like_zip()),
        ("model.pth", torch_like_zip()),
        ("model.safetensors", safetensors_bytes()),
    ],
    ids=["pt", "pth", "safetensors"],
)
def test_valid_looking_checkpoint_is_stored_and_left_pending(
    api: Api, filename: str, data: bytes
) -> None:
    response = upload(api, filename, data, name="my net")
    # No inspect worker in these tests: after inspect_wait_s the answer is 202 pending.
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending" and body["params"] is None
    assert body["name"] == "my net" and body["arch"] == "vgg11"
    assert body["num_classes"] == 10 and body["input_shape"] == [1, 32, 32]
    assert body["size"] == len(data)
    assert response.headers["location"] == f"/v1/models/{body['id']}"
    with api.storage.open(body["sha256"]) as stored:
        assert stored.read() == data
    # The inspection task went to the inspect queue, by name.
    queue = api.client.app.state.queue  # type: ignore[attr-defined]
    assert queue.snapshot(api.settings.inspect_queue_name).has(body["id"])

    shown = api.client.get(f"/v1/models/{body['id']}", headers=api.admin)
    assert shown.json() == body
    listing = api.client.get("/v1/models", headers=api.admin).json()
    assert listing["count"] == 1


@pytest.mark.parametrize(
    ("filename", "data", "needle"),
    [
        ("model.onnx", torch_like_zip(), ".pt, .pth or .safetensors"),
        ("model.pt", b"\x80\x02legacy pickle", "legacy"),
        ("model.pt", b"", "empty"),
        ("model.pt", b"PK\x03\x04 truncated zip", "corrupt"),
        ("model.safetensors", b"\x01\x00", "shorter"),
        ("model.safetensors", struct.pack("<Q", 10**12) + b"{}", "length"),
        ("model.safetensors", struct.pack("<Q", 4) + b"nope" + b"\x00" * 8, "not JSON"),
        ("model.safetensors", safetensors_bytes(header={"__metadata__": {}}), "no tensors"),
        (
            "model.safetensors",
            safetensors_bytes(
                header={"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 999]}}
            ),
            "malformed",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and len(value) < 40 else "",
)
def test_checkpoints_that_can_never_load_are_422(
    api: Api, filename: str, data: bytes, needle: str
) -> None:
    response = upload(api, filename, data)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert needle in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "file"]
    assert api.client.get("/v1/models", headers=api.admin).json()["count"] == 0


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"arch": "a b"}, ["body", "arch"]),
        ({"arch": "../etc"}, ["body", "arch"]),
        ({"num_classes": "ten"}, ["body", "num_classes"]),
        ({"num_classes": "1"}, ["body", "num_classes"]),
        ({"input_shape": "32,32"}, ["body", "input_shape"]),
        ({"input_shape": "1,0,32"}, ["body", "input_shape", 1]),
        ({"surprise": "x"}, ["body", "surprise"]),
    ],
)
def test_bad_fields_are_422_naming_them(api: Api, fields: dict[str, str], loc: list[Any]) -> None:
    response = upload(api, "model.pt", torch_like_zip(), **fields)
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["errors"]]


def test_arch_classes_and_shape_may_be_left_to_the_inspection(api: Api) -> None:
    """Left out (or sent blank, as a form's empty input): pending with nulls, for the worker
    to fill from the checkpoint."""
    left_out = api.client.post(
        "/v1/models", files={"file": ("m.pt", torch_like_zip())}, headers=api.admin
    )
    blank = upload(api, "m.pt", torch_like_zip(), arch="", num_classes=" ", input_shape="")
    for response in (left_out, blank):
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] == "pending"
        assert (body["arch"], body["num_classes"], body["input_shape"]) == (None, None, None)
    listing = api.client.get("/v1/models", headers=api.admin).json()
    assert listing["count"] == 2 and listing["data"][0]["arch"] is None


def test_an_unknown_arch_is_still_refused_before_storing(api: Api) -> None:
    response = upload(api, "m.pt", torch_like_zip(), arch="vgg12")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "arch"]
    assert api.client.get("/v1/models", headers=api.admin).json()["count"] == 0


def test_input_shape_spellings(api: Api) -> None:
    for spelling in ("3,32,32", "[3, 32, 32]", "3x32x32"):
        response = upload(api, "m.pt", torch_like_zip(), input_shape=spelling)
        assert response.json()["input_shape"] == [3, 32, 32], spelling


def test_not_multipart_is_415(api: Api) -> None:
    response = api.client.post("/v1/models", json=FIELDS, headers=api.admin)
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM


def test_needs_an_admin_token(api: Api) -> None:
    response = api.client.post("/v1/models", files={"file": ("m.pt", torch_like_zip())})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert api.client.get("/v1/models/mdl_nope", headers=api.admin).status_code == 404


def test_too_large_upload_is_413_and_stores_nothing(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, max_upload_bytes=1000)
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token()
        # Declared too large: refused before the body is read.
        big = upload(api, "m.pt", b"PK\x03\x04" + b"\x00" * (2 * 1024 * 1024))
        assert big.status_code == 413
        assert big.headers["content-type"] == PROBLEM
        # Within the envelope allowance but over the file limit: the streaming parser stops it.
        over = upload(api, "m.pt", b"PK\x03\x04" + b"\x00" * 5000)
        assert over.status_code == 413
        assert "1000" in over.json()["detail"]

        # Chunked (no Content-Length): counted while streaming.
        def chunks() -> Any:
            boundary = b"xyz"
            yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="m.pt"\r\n\r\n'
            for _ in range(3000):
                yield b"\x00" * 1024
            yield b"\r\n--" + boundary + b"--\r\n"

        chunked = client.post(
            "/v1/models",
            content=chunks(),
            headers={**api.admin, "Content-Type": "multipart/form-data; boundary=xyz"},
        )
        assert chunked.status_code == 413
        assert api.client.get("/v1/models", headers=api.admin).json()["count"] == 0
        leftovers = list((settings.data_dir / "tmp").iterdir())
        assert leftovers == []
