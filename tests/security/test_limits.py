"""Request size limits (413, streamed: nothing past the limit is read) and the budget of
failed authentications per client address (429 with Retry-After)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from infra.store.models import Dataset, Model
from service.api.main import create_app
from tests.api.api_helpers import Api, make_settings
from tests.security.asgi import call
from tests.security.conftest import PROBLEM_JSON
from tests.support.databases import DATABASES, database_for_test

MAX_REQUEST = 4 * 1024
MAX_UPLOAD = 64 * 1024
CHUNK = 16 * 1024
BOUNDARY = "edgeprune-test-boundary"


@pytest.fixture(params=DATABASES)
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    settings = make_settings(
        tmp_path,
        **database_for_test(request, tmp_path),
        max_request_bytes=MAX_REQUEST,
        max_upload_bytes=MAX_UPLOAD,
        unauthenticated_rate_limit_per_minute=100_000,
        inspect_wait_s=0.0,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token()
        yield api
        assert client.get("/v1/jobs", headers=api.admin).status_code == 200


def _multipart_stream(filename: str, total: int) -> Iterator[bytes]:
    """A multipart body whose file part is `total` zero bytes, made as it is read."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    for _ in range(total // CHUNK):
        yield b"\0" * CHUNK
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def _nothing_stored(api: Api) -> None:
    with api.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Model)) == 0
        assert session.scalar(select(func.count()).select_from(Dataset)) == 0
    leftovers = list((api.settings.data_dir / "tmp").glob("*"))
    assert leftovers == [], "temporary upload files were left behind"


def _assert_413(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413, body
    assert headers["content-type"] == PROBLEM_JSON
    assert json.loads(body)["type"] == "urn:edgeprune:problem:payload-too-large"


@pytest.mark.parametrize("path", ["/v1/models", "/v1/datasets"])
def test_chunked_upload_over_the_limit_stops_being_read(small: Api, path: str) -> None:
    # 4 MiB offered without a Content-Length; the app must stop soon after 64 KiB.
    filename = "m.safetensors" if path == "/v1/models" else "d.npz"
    response = call(
        small.client,
        "POST",
        path,
        headers={**small.admin, "content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        chunks=_multipart_stream(filename, 4 * 1024 * 1024),
    )
    _assert_413(response.status, response.headers, response.body)
    assert response.consumed <= MAX_UPLOAD + 2 * CHUNK
    _nothing_stored(small)


@pytest.mark.parametrize("path", ["/v1/models", "/v1/datasets"])
def test_declared_oversize_upload_is_refused_before_reading(small: Api, path: str) -> None:
    response = call(
        small.client,
        "POST",
        path,
        headers={
            **small.admin,
            "content-type": f"multipart/form-data; boundary={BOUNDARY}",
            "content-length": str(64 * 1024 * 1024),
        },
        chunks=_multipart_stream("m.pt", 64 * 1024 * 1024),
    )
    _assert_413(response.status, response.headers, response.body)
    assert response.consumed == 0
    _nothing_stored(small)


def test_upload_just_over_the_file_limit_is_413_through_http(small: Api) -> None:
    data = b"\0" * (MAX_UPLOAD + 1)
    response = small.client.post(
        "/v1/datasets", files={"file": ("d.npz", data)}, headers=small.admin
    )
    _assert_413(response.status_code, dict(response.headers), response.content)
    _nothing_stored(small)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/jobs"), ("PUT", "/v1/deployments/cams"), ("POST", "/v1/devices")],
)
def test_oversize_json_is_413_declared_or_chunked(small: Api, method: str, path: str) -> None:
    padding = json.dumps({"pad": "x" * (1024 * 1024)}).encode()
    declared = small.client.request(
        method, path, content=padding, headers={**small.admin, "content-type": "application/json"}
    )
    _assert_413(declared.status_code, dict(declared.headers), declared.content)

    chunked = call(
        small.client,
        method,
        path,
        headers={**small.admin, "content-type": "application/json"},
        chunks=(padding[i : i + 1024] for i in range(0, len(padding), 1024)),
    )
    _assert_413(chunked.status, chunked.headers, chunked.body)
    assert chunked.consumed <= MAX_REQUEST + 1024


# --- failed authentications --------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=DATABASES)
def throttled(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Api, Clock]]:
    clock = Clock()
    monkeypatch.setattr("service.api.ratelimit.time.monotonic", clock)
    settings = make_settings(
        tmp_path, **database_for_test(request, tmp_path), unauthenticated_rate_limit_per_minute=3
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token()
        yield api, clock


def test_failed_authentications_past_the_budget_get_429_with_retry_after(
    throttled: tuple[Api, Clock],
) -> None:
    api, clock = throttled
    attempts = [{}, {"Authorization": "Bearer ep_guess"}, {"Authorization": "Basic eDp5"}]
    assert [api.client.get("/v1/jobs", headers=h).status_code for h in attempts] == [401] * 3
    clock.now += 20
    for headers in attempts:  # every kind of failure is throttled alike
        response = api.client.get("/v1/models", headers=headers)
        assert response.status_code == 429
        assert response.headers["content-type"] == PROBLEM_JSON
        assert response.headers["retry-after"] == "40"  # the first failure leaves the window then
        assert response.json()["type"] == "urn:edgeprune:problem:too-many-requests"
    # A malformed body does not get past the throttle either.
    blocked = api.client.post(
        "/v1/jobs", content=b"{", headers={"content-type": "application/json"}
    )
    assert blocked.status_code == 429
    # A valid token from the same address still works, and probes never count.
    assert api.client.get("/v1/jobs", headers=api.admin).status_code == 200
    assert api.client.get("/healthz").status_code == 200


def test_the_window_slides_and_other_addresses_are_not_affected(
    throttled: tuple[Api, Clock],
) -> None:
    api, clock = throttled
    for _ in range(4):
        api.client.get("/v1/jobs")
    assert api.client.get("/v1/jobs").status_code == 429
    other = call(api.client, "GET", "/v1/jobs", headers={}, peer=("10.1.2.3", 5000))
    assert other.status == 401
    clock.now += 61  # the failures have left the one-minute window
    assert api.client.get("/v1/jobs").status_code == 401
