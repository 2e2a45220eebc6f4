"""The HTTP client against a real HTTP server on loopback (the test server in
edge_test_server.py): ETag/304, resumable downloads, retries with Retry-After, auth scope."""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import pytest

from edge_client.api import ApiClient
from edge_client.backoff import Backoff, Stopper
from edge_client.errors import AuthError, Interrupted, NotFound, ServerError
from tests.edge_client.edge_test_server import ADMIN_TOKEN, EdgeTestServer, start_server

FAST = Backoff(base=0.01, cap=0.05, jitter=1.0)


def _client(server: EdgeTestServer, token: str | None = None, **kw: object) -> ApiClient:
    kw.setdefault("backoff", FAST)
    return ApiClient(server.url, token or server.device_token("cams"), rng=random.Random(1), **kw)  # type: ignore[arg-type]


def _blob(n: int = 300_000) -> bytes:
    return random.Random(n).randbytes(n)


def test_manifest_then_304_with_etag(edge_server: EdgeTestServer) -> None:
    edge_server.promote("cams", b"model-bytes")
    with _client(edge_server) as api:
        first = api.get_manifest("cams")
        assert first is not None and first.version == 1 and first.etag
        assert first.input_shape == (3, 16, 16)
        assert api.get_manifest("cams", first.etag) is None
    assert edge_server.requests[-1].headers["If-None-Match"] == first.etag


def test_download_resumes_after_a_cut(edge_server: EdgeTestServer, tmp_path: Path) -> None:
    data = _blob()
    digest = edge_server.add_artifact(data)
    edge_server.cut_once[digest] = len(data) // 2
    dest = tmp_path / "model.part"
    with _client(edge_server) as api:
        size = api.download(f"/v1/artifacts/{digest}", dest, len(data))
    assert size == len(data)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    first, second = edge_server.artifact_requests()
    assert "Range" not in first.headers
    assert second.headers["Range"] == f"bytes={len(data) // 2}-"


def test_download_restarts_when_server_ignores_range(
    edge_server: EdgeTestServer, tmp_path: Path
) -> None:
    data = _blob()
    digest = edge_server.add_artifact(data)
    edge_server.cut_once[digest] = 1000
    edge_server.ignore_range = True  # the second answer is a 200 with the whole body
    dest = tmp_path / "model.part"
    with _client(edge_server) as api:
        api.download(f"/v1/artifacts/{digest}", dest, len(data))
    assert dest.read_bytes() == data
    assert len(edge_server.artifact_requests()) == 2


def test_download_continues_a_partial_file_from_an_earlier_run(
    edge_server: EdgeTestServer, tmp_path: Path
) -> None:
    data = _blob()
    digest = edge_server.add_artifact(data)
    dest = tmp_path / "model.part"
    dest.write_bytes(data[:12345])
    with _client(edge_server) as api:
        api.download(f"/v1/artifacts/{digest}", dest, len(data))
    assert dest.read_bytes() == data
    (only,) = edge_server.artifact_requests()
    assert only.headers["Range"] == "bytes=12345-"


def test_retry_after_is_honoured(edge_server: EdgeTestServer) -> None:
    edge_server.promote("cams", b"m")
    edge_server.queued_failures.append((503, {"Retry-After": "1"}))
    with _client(edge_server) as api:
        start = time.monotonic()
        assert api.get_manifest("cams") is not None
        elapsed = time.monotonic() - start
    first, second = edge_server.requests
    # The backoff alone would wait at most 0.05 s: the gap is the server's Retry-After.
    assert second.at - first.at >= 1.0
    assert elapsed < 5.0


def test_retries_are_bounded_and_4xx_is_not_retried(edge_server: EdgeTestServer) -> None:
    edge_server.queued_failures.extend([(503, {})] * 10)
    with _client(edge_server, retries=2) as api, pytest.raises(ServerError):
        api.get_manifest("cams")
    assert len(edge_server.requests) == 3
    edge_server.queued_failures.clear()
    edge_server.requests.clear()
    with _client(edge_server) as api, pytest.raises(NotFound):
        api.get_manifest("cams")  # nothing promoted
    assert len(edge_server.requests) == 1


def test_post_is_not_retried_after_it_reached_the_server(edge_server: EdgeTestServer) -> None:
    edge_server.queued_failures.append((503, {}))
    with ApiClient(edge_server.url, ADMIN_TOKEN, backoff=FAST) as api, pytest.raises(ServerError):
        api.register_device("cam-1", "cams")
    assert len(edge_server.requests) == 1
    assert not edge_server.devices


def test_device_token_cannot_read_another_deployment(edge_server: EdgeTestServer) -> None:
    edge_server.promote("other", b"m")
    with _client(edge_server) as api, pytest.raises(AuthError) as info:
        api.get_manifest("other")
    assert info.value.exit_code == 4 and info.value.status == 403


def test_token_is_not_sent_to_another_origin(edge_server: EdgeTestServer, tmp_path: Path) -> None:
    other, httpd, thread = start_server()
    try:
        digest = other.add_artifact(b"x" * 100)
        with _client(edge_server) as api, pytest.raises(AuthError):
            api.download(f"{other.url}/v1/artifacts/{digest}", tmp_path / "p", 100)
        assert "Authorization" not in other.requests[0].headers
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_stop_interrupts_a_retry_wait(edge_server: EdgeTestServer) -> None:
    edge_server.queued_failures.append((503, {"Retry-After": "30"}))
    stopper = Stopper()
    stopper.stop()
    with _client(edge_server, stopper=stopper) as api, pytest.raises(Interrupted):
        api.get_manifest("cams")
