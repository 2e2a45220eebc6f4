"""Which files are datasets, by name, and how far an archive may expand: the operator's
limits the API checks uploads with and the worker extracts with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# What the API takes as an upload; the engine also reads a plain `.tar` and folders.
UPLOAD_FORMATS = ("npz", "zip", "tar.gz")
ARCHIVE_FORMATS = ("zip", "tar.gz", "tar")
# Tars are opened with transparent compression, so both sides read the same members.
TAR_MODE: Final = "r:*"


def dataset_format(filename: str) -> str | None:
    """'npz', 'zip', 'tar.gz' (also `.tgz`) or 'tar' by the file's name; None for others."""
    name = filename.lower()
    if name.endswith(".npz"):
        return "npz"
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar.gz", ".tgz")):
        return "tar.gz"
    if name.endswith(".tar"):
        return "tar"
    return None


@dataclass(frozen=True)
class ArchiveLimits:
    """How far an archive (an `.npz` is one too) may expand. The operator sets the first two
    (EDGEPRUNE_MAX_DATASET_FILES, EDGEPRUNE_MAX_DATASET_BYTES); the API checks uploads and
    the worker extracts with the same values."""

    members: int = 100_000
    expanded_bytes: int = 16 * 1024**3
    # Images are already compressed, so a real dataset expands little; more is a bomb.
    ratio: int = 200


DEFAULT_LIMITS = ArchiveLimits()
# Below this total the ratio is not checked: a small archive of flat synthetic images
# compresses far better than 200x and expanding it harms nobody.
RATIO_FLOOR_BYTES = 16 * 1024**2
