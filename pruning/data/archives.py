"""Safe extraction of uploaded .zip / .tar.gz archives.

Never `extractall`: every member is checked (no absolute paths, no `..`, no links or special
files) and copied by hand with byte limits, because a member's declared size can lie.
"""

from __future__ import annotations

import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from pruning.data.types import DataError


@dataclass(frozen=True)
class ArchiveLimits:
    """How far an archive may expand before extraction is refused. The service's operator
    sets them (EDGEPRUNE_MAX_DATASET_BYTES, EDGEPRUNE_MAX_DATASET_FILES) and the worker
    passes them in; the defaults are the service's defaults."""

    members: int = 100_000
    expanded_bytes: int = 16 * 1024**3
    ratio: int = 200


DEFAULT_LIMITS = ArchiveLimits()
# Below this total the ratio check is skipped: a tiny archive of flat synthetic images
# compresses far better than 200× and expanding it harms nobody.
RATIO_FLOOR_BYTES = 16 * 1024**2
_CHUNK = 1 << 20


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith((".zip", ".tar.gz", ".tgz", ".tar"))


def extract_archive(path: Path, dest: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> None:
    """Extract `path` into the existing folder `dest`, member by member in chunks (never the
    whole archive in memory), or raise `DataError`."""
    name = path.name.lower()
    try:
        if name.endswith(".zip"):
            _extract_zip(path, dest, limits)
        else:
            _extract_tar(path, dest, limits)
    except DataError:
        raise
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{path.name} is not a readable archive: {exc}") from None


def _safe_target(dest: Path, member: str, archive: str) -> Path:
    normalised = member.replace("\\", "/")
    parts = PurePosixPath(normalised).parts
    if normalised.startswith("/") or (parts and ":" in parts[0]) or ".." in parts:
        raise DataError(f"{archive}: refusing member {member!r} (absolute path or '..')")
    target = dest.joinpath(*[p for p in parts if p not in ("", ".")])
    if not target.resolve().is_relative_to(dest.resolve()):
        raise DataError(f"{archive}: refusing member {member!r} (leaves the extraction folder)")
    return target


def check_totals(
    count: int, total: int, compressed: int, archive: str, limits: ArchiveLimits = DEFAULT_LIMITS
) -> None:
    if count > limits.members:
        raise DataError(
            f"{archive}: more than {limits.members} members (the operator's limit: "
            "EDGEPRUNE_MAX_DATASET_FILES)"
        )
    if total > limits.expanded_bytes:
        raise DataError(
            f"{archive}: expands to {total} bytes, over the {limits.expanded_bytes}-byte limit "
            "(the operator's limit: EDGEPRUNE_MAX_DATASET_BYTES)"
        )
    if total > RATIO_FLOOR_BYTES and total > limits.ratio * max(compressed, 1):
        raise DataError(f"{archive}: expansion ratio over {limits.ratio} (possible archive bomb)")


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
        infos = zf.infolist()
        total = sum(i.file_size for i in infos)
        check_totals(len(infos), total, sum(i.compress_size for i in infos), path.name, limits)
        plan = []
        for info in infos:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise DataError(f"{path.name}: refusing symbolic link {info.filename!r}")
            plan.append((info, _safe_target(dest, info.filename, path.name)))
        for info, target in plan:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            with zf.open(info) as src:
                _copy(src, target, info.file_size, path.name)


def _extract_tar(path: Path, dest: Path, limits: ArchiveLimits) -> None:
    with tarfile.open(path, mode="r:*") as tf:
        members = []
        for member in tf:  # streamed so a huge member list stops early
            members.append(member)
            if len(members) > limits.members:
                raise DataError(f"{path.name}: more than {limits.members} members")
        total = sum(m.size for m in members if m.isfile())
        check_totals(len(members), total, path.stat().st_size, path.name, limits)
        plan = []
        for member in members:
            if not (member.isfile() or member.isdir()):
                raise DataError(f"{path.name}: refusing link or special file {member.name!r}")
            plan.append((member, _safe_target(dest, member.name, path.name)))
        for member, target in plan:
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            src = tf.extractfile(member)
            if src is None:
                raise DataError(f"{path.name}: cannot read member {member.name!r}")
            with src:
                _copy(src, target, member.size, path.name)
