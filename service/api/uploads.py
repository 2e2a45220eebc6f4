"""Streaming multipart uploads: the body goes to a temporary file chunk by chunk.

Starlette's `request.form()` would spool the whole file before our code runs, so the size
limit could only be checked afterwards. Here the body is fed to python-multipart's push
parser as it arrives; the file part is written to disk with a running size check (413 the
moment it passes the limit) and its sha256 computed on the way. The temporary file is what
cheap validation reads, then it is handed to the content-addressed store and deleted.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio.to_thread
from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.api.errors import InvalidUpload, PayloadTooLarge, UnsupportedMediaType

# Plain form fields (arch, num_classes, ...) are tiny; anything bigger is not a field.
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16
MAX_FILENAME = 200  # stored with the row; names are shown, never used as paths


@dataclass
class ReceivedFile:
    filename: str
    path: Path
    size: int
    sha256: str


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    file: ReceivedFile | None = None


class _FormCollector:
    """Callbacks for python-multipart's push parser; keeps one file part on disk."""

    def __init__(self, *, file_field: str, max_file_bytes: int, tmp_dir: Path) -> None:
        self.file_field = file_field
        self.max_file_bytes = max_file_bytes
        self.tmp_dir = tmp_dir
        self.form = ReceivedForm()
        self.parts = 0
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._filename: str | None = None
        self._field_buf = bytearray()
        self._fh: IO[bytes] | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self.tmp_path: Path | None = None

    # python-multipart callback signatures: (data, start, end) for data, () for markers.
    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidUpload(f"more than {MAX_PARTS} form parts", loc=["body"])
        self._headers = {}
        self._name = self._filename = None
        self._field_buf = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        raw_name = options.get(b"name")
        if raw_name is None:
            raise InvalidUpload("a form part has no name", loc=["body"])
        self._name = raw_name.decode("utf-8", "replace")
        raw_filename = options.get(b"filename")
        if raw_filename is None:
            return
        if self._name != self.file_field:
            raise InvalidUpload(
                f"unexpected file field {self._name!r}; send the file as {self.file_field!r}",
                loc=["body", self._name],
            )
        if self._fh is not None:
            raise InvalidUpload("only one file per upload", loc=["body", self._name])
        # Only the base name is kept: a client's directory layout is not ours to store.
        client_name = raw_filename.decode("utf-8", "replace").replace("\\", "/")
        self._filename = os.path.basename(client_name)
        if not self._filename or len(self._filename) > MAX_FILENAME:
            raise InvalidUpload(
                f"the file name must have 1 to {MAX_FILENAME} characters", loc=["body", self._name]
            )
        fd, tmp = tempfile.mkstemp(prefix="upload-", dir=self.tmp_dir)
        self.tmp_path = Path(tmp)
        self._fh = os.fdopen(fd, "wb")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._filename is not None and self._fh is not None:
            self._size += len(chunk)
            if self._size > self.max_file_bytes:
                raise PayloadTooLarge(f"the file exceeds the limit of {self.max_file_bytes} bytes")
            self._hash.update(chunk)
            self._fh.write(chunk)
            return
        self._field_buf += chunk
        if len(self._field_buf) > MAX_FIELD_BYTES:
            raise InvalidUpload(
                f"form field {self._name!r} is larger than {MAX_FIELD_BYTES} bytes",
                loc=["body", self._name or ""],
            )

    def on_part_end(self) -> None:
        if self._filename is not None and self._fh is not None and self.tmp_path is not None:
            self._fh.close()
            self.form.file = ReceivedFile(
                filename=self._filename,
                path=self.tmp_path,
                size=self._size,
                sha256=self._hash.hexdigest(),
            )
            return
        if self._name is not None:
            try:
                self.form.fields[self._name] = self._field_buf.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidUpload(
                    f"form field {self._name!r} is not UTF-8", loc=["body", self._name]
                ) from None

    def close(self) -> None:
        if self._fh is not None and not self._fh.closed:
            self._fh.close()
        if self.tmp_path is not None:
            self.tmp_path.unlink(missing_ok=True)


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or not options.get(b"boundary"):
        raise UnsupportedMediaType("send the upload as multipart/form-data")
    return options[b"boundary"]


@asynccontextmanager
async def receive_multipart(
    request: Request, *, file_field: str, max_file_bytes: int, tmp_dir: Path
) -> AsyncIterator[ReceivedForm]:
    """Parse a multipart body as it streams in; the temporary file lives until the block ends."""
    boundary = _boundary(request)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    collector = _FormCollector(
        file_field=file_field, max_file_bytes=max_file_bytes, tmp_dir=tmp_dir
    )
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": collector.on_part_begin,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
        },
    )
    try:
        try:
            async for chunk in request.stream():
                if chunk:
                    # Disk writes and hashing leave the event loop to the other requests.
                    await anyio.to_thread.run_sync(parser.write, chunk)
            parser.finalize()
        except MultipartParseError as exc:
            raise InvalidUpload(f"malformed multipart body: {exc}", loc=["body"]) from None
        if collector.form.file is None:
            raise InvalidUpload(f"no file in field {file_field!r}", loc=["body", file_field])
        yield collector.form
    finally:
        collector.close()
