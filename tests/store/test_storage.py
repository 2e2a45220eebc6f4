"""The content-addressed artifact store on a local folder (fsspec)."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import IO, Any, cast

import pytest

from infra.storage import ArtifactNotFound, ArtifactStore, ArtifactTooLarge, InvalidDigest


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_put_stream_addresses_by_sha256(store: ArtifactStore, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    sha, size = store.put_stream(io.BytesIO(data))
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    blob = tmp_path / "artifacts" / "sha256" / sha[:2] / sha
    assert blob.read_bytes() == data
    assert store.exists(sha) and store.size(sha) == len(data)
    assert store.local_path(sha) == blob
    with store.open(sha) as handle:
        assert handle.read() == data
    # The same bytes again: same address, one blob, no temp leftovers.
    assert store.put_bytes(data) == (sha, size)
    assert _files(tmp_path / "artifacts") == [blob]


def test_put_file_and_copy_out(store: ArtifactStore, tmp_path: Path) -> None:
    src = tmp_path / "model.onnx"
    src.write_bytes(b"onnx bytes")
    sha, size = store.put_file(src)
    assert sha == hashlib.sha256(b"onnx bytes").hexdigest() and size == 10
    out = store.get_to_path(sha, tmp_path / "copy" / "m.onnx")
    assert out.read_bytes() == b"onnx bytes"


class _Broken(io.RawIOBase):
    """A client upload that dies half way: one chunk arrives (and is written), then an error."""

    def __init__(self, good: bytes) -> None:
        self.good = good
        self.sent = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self.sent:
            self.sent = True
            buffer[: len(self.good)] = self.good
            return len(self.good)
        raise ConnectionResetError("client went away")


def test_failing_stream_leaves_nothing_visible(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ConnectionResetError):
        store.put_stream(cast(IO[bytes], _Broken(b"x" * 1000)))
    assert _files(tmp_path / "artifacts") == []
    assert not (tmp_path / "artifacts" / "sha256").exists()


def test_size_limit_is_enforced_while_streaming(store: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactTooLarge):
        store.put_stream(io.BytesIO(b"y" * 5000), max_bytes=4096)
    assert _files(tmp_path / "artifacts") == []
    sha, size = store.put_stream(io.BytesIO(b"y" * 4096), max_bytes=4096)
    assert size == 4096 and store.exists(sha)


def test_range_reads(store: ArtifactStore) -> None:
    data = bytes(range(256)) * 10
    sha, _ = store.put_bytes(data)
    assert store.read_range(sha, 0, 10) == data[:10]
    assert store.read_range(sha, 100, 356) == data[100:356]
    assert store.read_range(sha, 2500) == data[2500:]
    assert store.read_range(sha, 2550, 9999) == data[2550:]  # end past the blob: clipped
    assert b"".join(store.iter_range(sha, 5, 2000, chunk_size=7)) == data[5:2000]
    with pytest.raises(ValueError):
        store.read_range(sha, 10, 5)


def test_bad_and_missing_digests(store: ArtifactStore) -> None:
    with pytest.raises(InvalidDigest):
        store.open("../../etc/passwd")
    with pytest.raises(InvalidDigest):
        store.exists("A" * 64)
    missing = "0" * 64
    assert not store.exists(missing)
    with pytest.raises(ArtifactNotFound):
        store.open(missing)
    with pytest.raises(ArtifactNotFound):
        store.size(missing)


def test_keyed_objects_replace_atomically(store: ArtifactStore, tmp_path: Path) -> None:
    key = "jobs/job_1/checkpoint.pt"
    assert store.get_key_to_path(key, tmp_path / "none") is None
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"epoch 1")
    second.write_bytes(b"epoch 2")
    store.put_key(key, first)
    store.put_key(key, second)
    assert store.key_exists(key)
    got = store.get_key_to_path(key, tmp_path / "got")
    assert got is not None and got.read_bytes() == b"epoch 2"
    store.delete_key(key)
    assert not store.key_exists(key)
    assert [p for p in _files(tmp_path / "artifacts")] == []
    with pytest.raises(Exception, match="invalid storage key"):
        store.put_key("../escape", first)


def test_memory_filesystem_url_works_too() -> None:
    store = ArtifactStore("memory://edgeprune-test-store")
    sha, _size = store.put_bytes(b"in memory")
    assert store.read_range(sha, 3, 9) == b"memory"
    assert store.local_path(sha) is None
