"""ImageFolder trees: the files and folders of an archive or a folder on disk
(`FolderListing`), and the classes and samples they hold (`image_folder_layout`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from edgeprune.contracts.dataset_rules.errors import DatasetRuleError

Parts = tuple[str, ...]

SPLIT_TRAIN = "train"
# Next to train/, the first of these that exists is the test split.
SPLITS_TEST = ("test", "val")
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".pgm", ".tif", ".tiff"}
)


def is_hidden(name: str) -> bool:
    """Archive tools add hidden files (`.DS_Store`) and `__MACOSX/` folders: not data."""
    return name.startswith(".") or name == "__MACOSX"


class FolderListing:
    """The files and folders of a tree as path parts below its top: an archive's members,
    or a walk of a folder on disk. Parent folders are implied by what they hold."""

    def __init__(self) -> None:
        # folder -> {child name: is a folder}
        self.children: dict[Parts, dict[str, bool]] = {(): {}}
        self.files: list[Parts] = []

    def add_folder(self, parts: Parts) -> None:
        for depth in range(1, len(parts) + 1):
            folder = parts[:depth]
            siblings = self.children[folder[:-1]]
            if siblings.get(folder[-1]) is False:
                raise DatasetRuleError(f"{'/'.join(folder)!r} is both a file and a folder")
            if folder[-1] not in siblings:
                siblings[folder[-1]] = True
                self.children[folder] = {}

    def add_file(self, parts: Parts) -> None:
        self.add_folder(parts[:-1])
        siblings = self.children[parts[:-1]]
        if parts[-1] in siblings:
            what = "a folder too" if siblings[parts[-1]] else "there twice"
            raise DatasetRuleError(f"archive member {'/'.join(parts)!r} is {what}")
        siblings[parts[-1]] = False
        self.files.append(parts)

    def visible(self, folder: Parts) -> dict[str, bool]:
        return {n: d for n, d in self.children.get(folder, {}).items() if not is_hidden(n)}


Sample = tuple[int, Parts]  # (class index, the file's parts below the listing's top)


@dataclass(frozen=True)
class ImageFolderLayout:
    """Samples in reading order: by class (sorted names), then by path within a class."""

    classes: list[str]
    train: list[Sample]
    test: list[Sample] | None  # None: the tree has no test split

    def train_counts(self) -> list[int]:
        counts = [0] * len(self.classes)
        for index, _ in self.train:
            counts[index] += 1
        return counts


def image_folder_layout(listing: FolderListing) -> ImageFolderLayout:
    """Read `root/<class>/<image>`, or `root/train/<class>/...` with an optional `test/`
    (else `val/`) beside it, below any lone wrapper folders (`pets/` from zipping a folder).
    Hidden files and folders are skipped; files beside the class folders are not samples;
    a file in a class folder (at any depth) must be an image by its suffix."""
    root: Parts = ()
    while True:
        entries = listing.visible(root)
        if len(entries) != 1 or not next(iter(entries.values())):
            break
        inner = (*root, next(iter(entries)))
        inside = listing.visible(inner)
        if not inside or not all(inside.values()) or inner[-1] in (SPLIT_TRAIN, *SPLITS_TEST):
            break
        root = inner
    train_root, test_root = root, None
    if listing.visible(root).get(SPLIT_TRAIN):
        train_root = (*root, SPLIT_TRAIN)
        test_root = next(((*root, n) for n in SPLITS_TEST if listing.visible(root).get(n)), None)
    classes = sorted(n for n, folder in listing.visible(train_root).items() if folder)
    if test_root is not None:
        test_classes = {n for n, folder in listing.visible(test_root).items() if folder}
        extra = sorted(test_classes - set(classes))
        if extra:
            raise DatasetRuleError(f"test class(es) {', '.join(extra[:5])} have no training sample")
    if not classes:
        raise DatasetRuleError("no class folders found (expected root/<class>/<image>)")
    train = _samples(listing, train_root, classes)
    if not train:
        raise DatasetRuleError("no images found under the class folders")
    test = None
    if test_root is not None:
        test = _samples(listing, test_root, classes)
        if not test:
            raise DatasetRuleError(f"the {test_root[-1]}/ folder holds no images")
    return ImageFolderLayout(classes, train, test)


def _samples(listing: FolderListing, folder: Parts, classes: list[str]) -> list[Sample]:
    index = {name: i for i, name in enumerate(classes)}
    depth = len(folder)
    samples = []
    # In sorted order, so that both doors name the same file when several are refused (a
    # zip lists its members in archive order, a folder walk in the file system's order).
    for parts in sorted(listing.files):
        if len(parts) < depth + 2 or parts[:depth] != folder or parts[depth] not in index:
            continue
        if any(is_hidden(p) for p in parts[depth + 1 :]):
            continue
        if PurePosixPath(parts[-1]).suffix.lower() not in IMAGE_SUFFIXES:
            raise DatasetRuleError(f"{'/'.join(parts)!r} in a class folder is not an image")
        samples.append((index[parts[depth]], parts))
    return sorted(samples)
