"""415 for JSON routes sent anything but JSON.

Without this, FastAPI hands a `text/plain` body to pydantic as raw bytes and answers a
confusing 422 ("input should be a valid dictionary").
"""

from __future__ import annotations

from fastapi import Request

from service.api.errors import UnsupportedMediaType


def require_json(request: Request) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"send the body as application/json, not {media_type or 'no content type'}"
        )


def require_json_if_body(request: Request) -> None:
    """For routes whose body is optional: no body is fine, any body must be JSON."""
    declared = request.headers.get("content-length")
    has_body = (declared is not None and declared.strip() not in ("", "0")) or (
        "transfer-encoding" in request.headers
    )
    if has_body:
        require_json(request)
