"""One request straight into the ASGI app, counting how much of the body the app pulled.

A test client sends the whole body whatever the server does; here the body is produced
chunk by chunk on demand, so "the server stopped reading at the limit" is observable.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    consumed: int  # body bytes the app asked for before answering
    extra: dict[str, Any] = field(default_factory=dict)


def call(
    client: TestClient,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    chunks: Iterable[bytes] = (),
    peer: tuple[str, int] = ("127.0.0.1", 40000),
) -> RawResponse:
    """Run one request through `client.app` on the client's own event loop (its lifespan
    state, database and storage are the running ones)."""
    body_chunks = iter(chunks)
    consumed = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal consumed
        chunk = next(body_chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": peer,
        "server": ("testserver", 80),
        "state": {},
    }

    async def run() -> None:
        await client.app(scope, receive, send)

    assert client.portal is not None, "use the client inside its `with` block"
    client.portal.call(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return RawResponse(
        status=start["status"],
        headers={k.decode(): v.decode() for k, v in start["headers"]},
        body=body,
        consumed=consumed,
    )
