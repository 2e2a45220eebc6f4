"""An archive's members, each checked before anything is extracted or read: the count, the
path, the kind, the declared expanded size against the operator's limits, and a name used
twice (through the `FolderListing` the members make)."""

from __future__ import annotations

import stat
import tarfile
import zipfile
from pathlib import PurePosixPath
from typing import Literal

from edgeprune.contracts.dataset_rules.errors import DatasetRuleError
from edgeprune.contracts.dataset_rules.formats import (
    DEFAULT_LIMITS,
    RATIO_FLOOR_BYTES,
    ArchiveLimits,
)
from edgeprune.contracts.dataset_rules.image_folder import FolderListing, Parts

MemberKind = Literal["file", "folder", "link", "special"]
_REFUSED_KINDS = {"link": "is a link", "special": "is not a file or folder"}


def member_parts(name: str) -> Parts:
    """An archive member's path as parts below the archive's top; absolute paths, drive or
    stream names (`C:`, `a:b`) and `..` are refused."""
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith(("/", "\\")) or (parts and ":" in parts[0]):
        raise DatasetRuleError(f"archive member {name!r} has an absolute path")
    if ".." in parts:
        raise DatasetRuleError(f"archive member {name!r} points outside the archive ('..')")
    return tuple(p for p in parts if p not in ("", "."))


class MemberScan:
    """Every member of one archive, checked in the archive's order before anything is
    extracted or read: the member count, the path, the kind (files and folders only, never
    links or devices), the declared expanded size, and a name used twice. `listing` is the
    tree the members make, for `image_folder_layout`."""

    def __init__(self, archive_bytes: int, limits: ArchiveLimits = DEFAULT_LIMITS):
        self.archive_bytes = archive_bytes
        self.limits = limits
        self.count = 0
        self.expanded = 0
        self.listing = FolderListing()

    def add_zip(self, info: zipfile.ZipInfo) -> Parts:
        # Unix mode in the high 16 bits; zips from other systems leave the type bits 0.
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            return self._add(info.filename, "link", info.file_size)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            return self._add(info.filename, "special", info.file_size)
        return self._add(info.filename, "folder" if info.is_dir() else "file", info.file_size)

    def add_tar(self, member: tarfile.TarInfo) -> Parts:
        if member.issym() or member.islnk():
            return self._add(member.name, "link", member.size)
        if not (member.isfile() or member.isdir()):
            return self._add(member.name, "special", member.size)
        return self._add(member.name, "folder" if member.isdir() else "file", member.size)

    def _add(self, name: str, kind: MemberKind, size: int) -> Parts:
        self.count += 1
        limits = self.limits
        if self.count > limits.members:
            raise DatasetRuleError(
                f"the archive has more than {limits.members} members (the operator's limit: "
                "EDGEPRUNE_MAX_DATASET_FILES)"
            )
        parts = member_parts(name)
        if kind in _REFUSED_KINDS:
            raise DatasetRuleError(f"archive member {name!r} {_REFUSED_KINDS[kind]}: refused")
        self.expanded += max(size, 0)
        if self.expanded > limits.expanded_bytes:
            raise DatasetRuleError(
                f"the archive expands to more than {limits.expanded_bytes} bytes (the "
                "operator's limit: EDGEPRUNE_MAX_DATASET_BYTES)"
            )
        if self.expanded > RATIO_FLOOR_BYTES and self.expanded > limits.ratio * max(
            self.archive_bytes, 1
        ):
            raise DatasetRuleError(
                f"the archive expands to over {limits.ratio} times its size (an archive bomb?)"
            )
        if kind == "folder":
            self.listing.add_folder(parts)
        elif not parts:
            raise DatasetRuleError(f"archive member {name!r} is a file without a name")
        else:
            self.listing.add_file(parts)
        return parts
