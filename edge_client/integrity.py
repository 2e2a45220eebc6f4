"""Size and sha256 checks of downloaded files."""

from __future__ import annotations

import hashlib
from pathlib import Path

from .errors import IntegrityError


def sha256_file(path: Path, chunk: int = 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, *, sha256: str | None, size: int | None) -> None:
    """Raise IntegrityError unless `path` has exactly this size and sha256 (when given)."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise IntegrityError(f"{path.name}: {actual_size} bytes, manifest says {size}")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256.lower():
            raise IntegrityError(f"{path.name}: sha256 {actual}, manifest says {sha256.lower()}")
