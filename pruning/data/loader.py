"""`load_task_data`: one entry point for every supported data source."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from edgeprune.contracts.dataset_rules import TEST_FRACTION, dataset_format
from pruning.data.archives import DEFAULT_LIMITS, ArchiveLimits, extract_archive, is_archive
from pruning.data.arrays import load_digits_builtin, load_npz
from pruning.data.cifar import find_cifar_root, load_cifar10
from pruning.data.images import load_image_folder
from pruning.data.photos import load_photo_patches_builtin
from pruning.data.prepare import finalise
from pruning.data.types import DataError, RawData, TaskData

BUILTINS = ("builtin:digits", "builtin:photos")


def load_task_data(
    source: str,
    *,
    input_size: tuple[int, int] | None = None,
    in_channels: int | None = None,
    test_fraction: float = TEST_FRACTION,
    seed: int = 0,
    archive_limits: ArchiveLimits = DEFAULT_LIMITS,
) -> TaskData:
    """Load an edge task's data, split and normalised (image files and 8-bit arrays are
    read a batch at a time: see `pruning.data.samples`).

    `source` is `builtin:digits`, `builtin:photos` (32×32 patches of scikit-image's bundled
    photographs), a `.npz` file, a CIFAR-10 python-format folder (or its parent), an
    ImageFolder tree, or a `.zip` / `.tar.gz` / `.tgz` of such a tree. Without a test split
    in the source, a deterministic stratified split by `seed` is made; `builtin:photos` has
    its own fixed test split, cut from parts of the photos that training never sees.
    """
    if source == "builtin:digits":
        raw = load_digits_builtin()
        input_size = input_size or (32, 32)
    elif source == "builtin:photos":
        raw = load_photo_patches_builtin()
        input_size = input_size or (32, 32)
    else:
        raw = _read_source(
            Path(source), input_size=input_size, in_channels=in_channels, limits=archive_limits
        )
    return finalise(
        raw,
        source=source,
        input_size=input_size,
        in_channels=in_channels,
        test_fraction=test_fraction,
        seed=seed,
    )


def _read_source(
    path: Path,
    *,
    input_size: tuple[int, int] | None,
    in_channels: int | None,
    keep: tempfile.TemporaryDirectory[str] | None = None,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    name: str | None = None,
) -> RawData:
    # An extracted archive's folder is named for the archive in messages, not the temp name.
    name = name or path.name
    if not path.exists():
        known = ", ".join(BUILTINS)
        raise DataError(f"data source {name!r} does not exist (built-in sources: {known})")
    if path.is_dir():
        cifar = find_cifar_root(path)
        if cifar is not None:
            return load_cifar10(cifar)
        return load_image_folder(
            path, input_size=input_size, in_channels=in_channels, source=name, keep=keep
        )
    if dataset_format(name) == "npz":
        return load_npz(str(path), name, limits)
    if is_archive(path):
        # Images are decoded per batch, so the extracted files live as long as the samples
        # that read them (the folder goes when the last reference to it does).
        extracted = tempfile.TemporaryDirectory(prefix="edgeprune-data-")
        try:
            extract_archive(path, Path(extracted.name), limits)
            return _read_source(
                Path(extracted.name),
                input_size=input_size,
                in_channels=in_channels,
                keep=extracted,
                name=name,
            )
        except BaseException:
            extracted.cleanup()
            raise
    raise DataError(f"unsupported data source {name!r}: use .npz, .zip, .tar.gz, .tgz or a folder")


def inspect_dataset(source: str) -> dict[str, Any]:
    """Sample count, classes and input shape, as the dataset upload endpoint reports them."""
    data = load_task_data(source)
    return {
        "samples": len(data.y_train) + len(data.y_test),
        "train_samples": len(data.y_train),
        "test_samples": len(data.y_test),
        "classes": list(data.classes),
        "num_classes": data.num_classes,
        "input_shape": list(data.input_shape),
    }
