"""Safe extraction of uploaded .zip / .tar.gz archives.

Never `extractall`: every member passes the rules the API checked the upload with
(`edgeprune.contracts.dataset_rules.MemberScan`: member count, paths, links and special
files, expanded size) before anything is written, and is then copied by hand with byte
limits, because a member's declared size can lie.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path
from typing import IO

from edgeprune.contracts.dataset_rules import (
    ARCHIVE_FORMATS,
    DEFAULT_LIMITS,
    TAR_MODE,
    ArchiveLimits,
    DatasetRuleError,
    MemberScan,
    Parts,
    dataset_format,
)
from pruning.data.types import DataError

__all__ = ["DEFAULT_LIMITS", "ArchiveLimits", "extract_archive", "is_archive"]

_CHUNK = 1 << 20


def is_archive(path: Path) -> bool:
    return dataset_format(path.name) in ARCHIVE_FORMATS


def extract_archive(path: Path, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Extract `path` into the existing folder `dest`, member by member in chunks (never the
    whole archive in memory), or raise `DataError`."""
    try:
        if dataset_format(path.name) == "zip":
            _extract_zip(path, dest, limits)
        else:
            _extract_tar(path, dest, limits)
    except DatasetRuleError as exc:
        raise DataError(f"{path.name}: {exc}") from None
    except DataError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{path.name} is not a readable archive: {exc}") from None


def _target(dest: Path, parts: Parts, member: str, archive: str) -> Path:
    target = dest.joinpath(*parts)
    # The rules already refused absolute paths and '..'; this guards the folder itself.
    if not target.resolve().is_relative_to(dest.resolve()):
        raise DataError(f"{archive}: refusing member {member!r} (leaves the extraction folder)")
    return target


def _copy(src: IO[bytes], target: Path, limit: int, archive: str) -> int:
    """Copy at most `limit` bytes; more means the archive lied about its sizes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with target.open("xb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise DataError(f"{archive}: a member is larger than its declared size")
            out.write(chunk)
    return written


def _extract_zip(path: Path, dest: Path, limits: ArchiveLimits) -> None:
    with zipfile.ZipFile(path) as zf:
        scan = MemberScan(path.stat().st_size, limits)
        plan = [(info, scan.add_zip(info)) for info in zf.infolist()]
        for info, parts in plan:
            target = _target(dest, parts, info.filename, path.name)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as src:
                _copy(src, target, info.file_size, path.name)


def _extract_tar(path: Path, dest: Path, limits: ArchiveLimits) -> None:
    with tarfile.open(path, mode=TAR_MODE) as tf:
        scan = MemberScan(path.stat().st_size, limits)
        # Streamed: a huge member list, or a bad member, stops the scan early.
        plan = [(member, scan.add_tar(member)) for member in tf]
        for member, parts in plan:
            target = _target(dest, parts, member.name, path.name)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            src = tf.extractfile(member)
            if src is None:
                raise DataError(f"{path.name}: cannot read member {member.name!r}")
            with src:
                _copy(src, target, member.size, path.name)
