"""GET /v1/artifacts/{sha256}: bytes with Range support."""

from __future__ import annotations

import io

import pytest

from tests.api.api_helpers import Api

DATA = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture
def sha(api: Api) -> str:
    digest, _ = api.storage.put_stream(io.BytesIO(DATA))
    return digest


def test_full_download_with_etag_and_accept_ranges(api: Api, sha: str) -> None:
    response = api.client.get(f"/v1/artifacts/{sha}", headers=api.admin)
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["etag"] == f'"{sha}"'
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(DATA))


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=5000-", 5000, 10239),
        ("bytes=-240", 10000, 10239),
        ("bytes=10000-99999", 10000, 10239),
    ],
)
def test_range_is_206_with_content_range(
    api: Api, sha: str, range_header: str, first: int, last: int
) -> None:
    response = api.client.get(f"/v1/artifacts/{sha}", headers={**api.admin, "Range": range_header})
    assert response.status_code == 206
    assert response.content == DATA[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response.headers["content-length"] == str(last - first + 1)


def test_range_past_the_end_is_416(api: Api, sha: str) -> None:
    response = api.client.get(
        f"/v1/artifacts/{sha}", headers={**api.admin, "Range": "bytes=10240-"}
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"
    assert response.headers["content-type"] == "application/problem+json"


def test_if_range_with_a_different_etag_sends_everything(api: Api, sha: str) -> None:
    response = api.client.get(
        f"/v1/artifacts/{sha}",
        headers={**api.admin, "Range": "bytes=0-9", "If-Range": '"other"'},
    )
    assert response.status_code == 200 and response.content == DATA


def test_if_none_match_is_304(api: Api, sha: str) -> None:
    response = api.client.get(
        f"/v1/artifacts/{sha}", headers={**api.admin, "If-None-Match": f'"{sha}"'}
    )
    assert response.status_code == 304


def test_head_gives_the_size_without_a_body(api: Api, sha: str) -> None:
    response = api.client.head(f"/v1/artifacts/{sha}", headers=api.admin)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(DATA)) and response.content == b""


def test_unknown_or_malformed_digest_is_404_or_422(api: Api) -> None:
    missing = api.client.get(f"/v1/artifacts/{'a' * 64}", headers=api.admin)
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:edgeprune:problem:artifact-not-found"
    malformed = api.client.get("/v1/artifacts/..%2F..%2Fetc", headers=api.admin)
    assert malformed.status_code in (404, 422)
    assert api.client.get(f"/v1/artifacts/{'a' * 64}").status_code == 401
