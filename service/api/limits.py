"""Request body size limits, enforced before a route reads the body.

FastAPI reads a JSON body whole before any dependency runs, so the limit has to sit below
the routes: an ASGI middleware that refuses a too-large `Content-Length` at once and counts
the bytes of bodies sent without one (chunked). Uploads get `max_upload_bytes` plus room for
the multipart envelope; the upload parser itself applies the exact limit to the file.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import TYPE_PREFIX, PayloadTooLarge, problem_response

UPLOAD_PATHS = frozenset({"/v1/models", "/v1/datasets"})
# Form fields and part headers around the file.
MULTIPART_OVERHEAD = 1024 * 1024


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_request_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes

    def _limit(self, scope: Scope) -> int:
        if scope["method"] == "POST" and scope["path"].rstrip("/") in UPLOAD_PATHS:
            return self.max_upload_bytes + MULTIPART_OVERHEAD
        return self.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = problem_response(
                413,
                title=PayloadTooLarge.title,
                detail=f"the request body exceeds the limit of {limit} bytes",
                type_=TYPE_PREFIX + PayloadTooLarge.slug,
                instance=scope["path"],
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the route's body read: the problem handler answers 413.
                    raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)
