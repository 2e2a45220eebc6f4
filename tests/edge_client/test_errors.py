"""Problem+json answers become typed errors with documented exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from edge_client import errors
from edge_client.errors import (
    AuthError,
    NotFound,
    RequestRejected,
    ServerError,
    from_response,
    parse_retry_after,
)


def _response(status: int, body: object = None, headers: dict[str, str] | None = None):
    request = httpx.Request("GET", "http://server/v1/deployments/cams/manifest")
    if body is None:
        return httpx.Response(status, headers=headers, request=request, text="oops")
    return httpx.Response(status, headers=headers, request=request, json=body)


def _problem(status: int, slug: str, detail: str) -> dict[str, object]:
    return {
        "type": f"urn:edgeprune:problem:{slug}",
        "title": slug,
        "status": status,
        "detail": detail,
    }


@pytest.mark.parametrize(
    ("status", "cls", "code"),
    [
        (401, AuthError, 4),
        (403, AuthError, 4),
        (404, NotFound, 5),
        (409, RequestRejected, 6),
        (422, RequestRejected, 6),
        (500, ServerError, 7),
        (503, ServerError, 7),
        (429, ServerError, 7),
    ],
)
def test_status_maps_to_class_and_exit_code(status: int, cls: type, code: int) -> None:
    error = from_response(_response(status, _problem(status, "some-slug", "why it failed")))
    assert type(error) is cls
    assert error.exit_code == code
    text = str(error)
    assert str(status) in text and "why it failed" in text and "\n" not in text


def test_problem_type_and_slug_are_kept() -> None:
    error = from_response(_response(404, _problem(404, "deployment-not-found", "no cams")))
    assert isinstance(error, NotFound)
    assert error.slug == "deployment-not-found"
    assert "/v1/deployments/cams/manifest" in str(error)


def test_non_json_error_page_still_parses() -> None:
    error = from_response(_response(502))
    assert isinstance(error, ServerError)
    assert error.status == 502


def test_retry_after_seconds_and_http_date() -> None:
    error = from_response(_response(503, _problem(503, "busy", "later"), {"Retry-After": "7"}))
    assert isinstance(error, ServerError)
    assert error.retry_after == 7.0
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    parsed = parse_retry_after(when)
    assert parsed is not None and 25 <= parsed <= 30
    assert parse_retry_after("not a date") is None
    assert parse_retry_after(None) is None


def test_exit_codes_are_distinct_and_documented() -> None:
    classes = [
        errors.EdgeError,
        errors.ConfigError,
        errors.NotSetUp,
        errors.ServerError,
        errors.Unreachable,
        errors.AuthError,
        errors.NotFound,
        errors.IntegrityError,
        errors.ModelInvalid,
        errors.RequestRejected,
        errors.NothingToRollBack,
        errors.DataError,
        errors.Interrupted,
    ]
    codes = [cls.exit_code for cls in classes]
    assert len(set(codes)) == len(codes)
    # Bad local input reads like a bad option: typer's usage errors exit 2 too.
    assert errors.ConfigError.exit_code == 2
    doc = errors.__doc__ or ""
    for cls in classes:
        assert f"{cls.exit_code:<4}  {cls.__name__}" in doc
