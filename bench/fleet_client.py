"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for simulating thousands of devices.

httpx costs about a millisecond of client CPU per request, which caps a Python load
generator near 1,100 requests/s; a simulated fleet of 10,000 devices needs a few thousand
per second from one process. This client only does what a manifest poll needs: GET with
headers, a `Content-Length` body (no chunked bodies), keep-alive, and one reconnect when the
server has closed an idle connection. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    status: int
    etag: bytes | None
    body: bytes


class Connection:
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self._host, self._port, self._timeout_s = host, port, timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def get(self, path: str, headers: dict[str, str]) -> Answer:
        request = _request(self._host, path, headers)
        fresh = self._writer is None
        try:
            return await self._bounded(request)
        except (ConnectionError, asyncio.IncompleteReadError):
            if fresh:
                raise
        # The server closed a keep-alive connection between polls: a GET is safe to resend.
        self.reconnects += 1
        return await self._bounded(request)

    async def _bounded(self, request: bytes) -> Answer:
        try:
            return await asyncio.wait_for(self._exchange(request), self._timeout_s)
        except BaseException:
            await self.close()  # a half-read answer leaves the connection unusable
            raise

    async def _exchange(self, request: bytes) -> Answer:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(request)
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        found: dict[bytes, bytes] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                found[name.strip().lower()] = value.strip()
        length = int(found.get(b"content-length", b"0"))
        body = await self._reader.readexactly(length) if length else b""
        if found.get(b"connection", b"").lower() == b"close":
            await self.close()
        return Answer(status, found.get(b"etag"), body)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _request(host: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
