"""Streaming a stored blob over HTTP, with single-range `Range` support.

Devices resume cut downloads with `Range: bytes=N-`; one range per request is all a
resuming client needs, so multi-range requests are answered with the whole body (allowed by
RFC 9110: a server may ignore Range). Blobs are immutable (content-addressed), so the sha256
is a strong ETag and `If-Range` can be honoured exactly.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi import Request
from starlette.responses import Response, StreamingResponse

from infra.storage import ArtifactStore
from service.api.errors import RangeNotSatisfiable

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range [first, last] asked for, None to send everything.

    Raises RangeNotSatisfiable for a well-formed range that lies outside the blob.
    """
    match = _RANGE.match(header.strip().replace(" ", ""))
    if match is None:
        return None  # multi-range or another unit: ignore, send the full body
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix range: the last N bytes
        length = int(last_text)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(f"cannot serve the last 0 bytes of {size}")
        return max(size - length, 0), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # syntactically invalid: RFC 9110 says ignore it
    if first >= size:
        raise RangeNotSatisfiable(f"range starts at {first} but the blob has {size} bytes")
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


def _iter(storage: ArtifactStore, sha256: str, start: int, end: int) -> Iterator[bytes]:
    # Starlette iterates a sync iterator in a worker thread: file reads stay off the loop.
    yield from storage.iter_range(sha256, start, end)


def blob_response(
    request: Request,
    storage: ArtifactStore,
    *,
    sha256: str,
    size: int,
    content_type: str,
    filename: str | None = None,
) -> Response:
    etag = f'"{sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        # Content-addressed: the bytes behind this URL never change.
        "Cache-Control": "private, max-age=31536000, immutable",
    }
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
        return Response(status_code=304, headers=headers)

    byte_range = None
    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if range_header and (if_range is None or if_range.strip() == etag):
        try:
            byte_range = parse_range(range_header, size)
        except RangeNotSatisfiable as exc:
            exc.headers["Content-Range"] = f"bytes */{size}"
            raise
    if request.method == "HEAD":
        headers["Content-Length"] = str(size)
        return Response(status_code=200, headers=headers, media_type=content_type)
    if byte_range is None:
        headers["Content-Length"] = str(size)
        return StreamingResponse(
            _iter(storage, sha256, 0, size), headers=headers, media_type=content_type
        )
    first, last = byte_range
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(last - first + 1)
    return StreamingResponse(
        _iter(storage, sha256, first, last + 1),
        status_code=206,
        headers=headers,
        media_type=content_type,
    )
