"""Content-addressed artifact storage on any fsspec URL (a local folder by default).

Layout under the root URL:
    sha256/<first two hex digits>/<sha256>   immutable blobs (uploads, published artifacts)
    jobs/<job id>/<name>                     mutable per-job objects (epoch checkpoints)
    tmp/<random>                             objects being written

Nothing is ever written in place: bytes go to `tmp/` and are renamed into their final key
once complete, so a reader never sees a partial artifact. On a local folder the rename is
atomic; on object stores (S3 and friends) a "rename" is a copy of a complete object, which
appears all at once.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

CHUNK_SIZE = 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEY = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")


class StorageError(Exception):
    pass


class ArtifactNotFound(StorageError, LookupError):
    pass


class InvalidDigest(StorageError, ValueError):
    pass


class ArtifactTooLarge(StorageError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"upload is larger than the limit of {limit} bytes")
        self.limit = limit


def _check_digest(sha256: str) -> str:
    # Digests arrive from URLs: refusing anything but 64 lowercase hex digits also rules out
    # path traversal.
    if not _SHA256.match(sha256):
        raise InvalidDigest(f"not a sha256 hex digest: {sha256[:80]!r}")
    return sha256


def _check_key(key: str) -> str:
    if not _KEY.match(key) or any(part in ("", ".", "..") for part in key.split("/")):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class ArtifactStore:
    """Blobs addressed by sha256, plus a few named per-job objects, under one fsspec URL."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = root.rstrip("/")
        self.fs.makedirs(self._join("tmp"), exist_ok=True)

    def _join(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def blob_path(self, sha256: str) -> str:
        """The blob's path inside the filesystem (not a URL)."""
        _check_digest(sha256)
        return self._join("sha256", sha256[:2], sha256)

    def _key_path(self, key: str) -> str:
        return self._join(_check_key(key))

    # -- writing -------------------------------------------------------------------------------

    def _write_temp(self, source: IO[bytes], max_bytes: int | None) -> tuple[str, str, int]:
        tmp = self._join("tmp", uuid.uuid4().hex)
        digest = hashlib.sha256()
        size = 0
        try:
            with self.fs.open(tmp, "wb") as out:
                while chunk := source.read(CHUNK_SIZE):
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise ArtifactTooLarge(max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
        except BaseException:
            self._remove_quietly(tmp)
            raise
        return tmp, digest.hexdigest(), size

    def _remove_quietly(self, path: str) -> None:
        try:
            if self.fs.exists(path):
                self.fs.rm(path)
        except OSError:
            pass  # a leftover tmp object is harmless; the original error matters more

    def _publish(self, tmp: str, final: str) -> None:
        parent = final.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        try:
            self.fs.mv(tmp, final)
        except BaseException:
            self._remove_quietly(tmp)
            raise

    def put_stream(self, source: IO[bytes], max_bytes: int | None = None) -> tuple[str, int]:
        """Store a stream's bytes; returns (sha256, size). Raises ArtifactTooLarge past max_bytes.

        The digest is computed while streaming to a temp object; the temp object is then
        renamed to its content address (or dropped when that blob exists already).
        """
        tmp, sha256, size = self._write_temp(source, max_bytes)
        final = self.blob_path(sha256)
        if self.fs.exists(final):
            self._remove_quietly(tmp)  # same bytes stored before: content addressing dedupes
        else:
            self._publish(tmp, final)
        return sha256, size

    def put_file(self, path: str | Path) -> tuple[str, int]:
        with open(path, "rb") as source:
            return self.put_stream(source)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.put_stream(io.BytesIO(data))

    # -- reading -------------------------------------------------------------------------------

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self.blob_path(sha256)))

    def size(self, sha256: str) -> int:
        try:
            return int(self.fs.size(self.blob_path(sha256)))
        except FileNotFoundError:
            raise ArtifactNotFound(sha256) from None

    def open(self, sha256: str) -> IO[bytes]:
        """A seekable binary file object; the caller closes it."""
        try:
            return self.fs.open(self.blob_path(sha256), "rb")
        except FileNotFoundError:
            raise ArtifactNotFound(sha256) from None

    def local_path(self, sha256: str) -> Path | None:
        """The blob's path on the local disk when the store is a local folder, else None."""
        if isinstance(self.fs, LocalFileSystem):
            return Path(self.blob_path(sha256))
        return None

    def read_range(self, sha256: str, start: int, end: int | None = None) -> bytes:
        """Bytes [start, end) of a blob (end=None: to the end)."""
        return b"".join(self.iter_range(sha256, start, end))

    def iter_range(
        self, sha256: str, start: int = 0, end: int | None = None, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Stream bytes [start, end) in chunks (for HTTP Range responses)."""
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid range [{start}, {end})")
        with self.open(sha256) as handle:
            handle.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                want = chunk_size if remaining is None else min(chunk_size, remaining)
                chunk = handle.read(want)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    def get_to_path(self, sha256: str, dest: str | Path) -> Path:
        """Copy a blob to a local file (the worker's temp dir)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.open(sha256) as source, dest.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK_SIZE)
        return dest

    # -- named objects (per-job checkpoints) ----------------------------------------------------

    def put_key(self, key: str, path: str | Path) -> int:
        """Replace the object at `key` with a local file's bytes, temp-then-rename; returns size."""
        final = self._key_path(key)
        with open(path, "rb") as source:
            tmp, _, size = self._write_temp(source, None)
        self._publish(tmp, final)
        return size

    def key_exists(self, key: str) -> bool:
        return bool(self.fs.exists(self._key_path(key)))

    def get_key_to_path(self, key: str, dest: str | Path) -> Path | None:
        """Copy the object at `key` to a local file; None when there is no such object."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.fs.open(self._key_path(key), "rb") as source, dest.open("wb") as out:
                shutil.copyfileobj(source, out, CHUNK_SIZE)
        except FileNotFoundError:
            return None
        return dest

    def delete_key(self, key: str) -> None:
        self._remove_quietly(self._key_path(key))

    def ping(self) -> None:
        """Raise if the store cannot be listed (readiness probe)."""
        self.fs.ls(self.root, detail=False)
