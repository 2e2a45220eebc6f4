"""What an edge dataset must be, written once for both doors it goes through: the API's
upload check (`service/api/validation`) and the engine's loaders (`pruning/data`).

Standard library only, so the torch-free API can call it. Each side reads the bytes its own
way (zip and tar members, numpy arrays, image headers, a folder on disk) and hands the facts
to these rules; a broken rule raises `DatasetRuleError` with a one-line reason, which the API
answers as a 422 and the engine as a `DataError`. An upload the API accepts is therefore one
the worker can read, and one it refuses would have failed the job.

Two checks need the array's values and stay with numpy on each side: image values must be
finite once read as float32 (what the engine trains on), and `class_labels` gets the label
array's unique values.

One module a job, every public name re-exported here (import from the package):
errors (`DatasetRuleError`), formats (upload and archive formats by name, the operator's
`ArchiveLimits`), members (`member_parts`, `MemberScan`: an archive's members before any is
read), image_folder (`FolderListing`, `image_folder_layout`: ImageFolder trees), images (an
image's pixel count and channels), npz (an `.npz`'s arrays: `npz_layout`, `class_labels`),
split (classes and the train/test split: `check_classes`, `held_out_counts`).
"""

from edgeprune.contracts.dataset_rules.errors import DatasetRuleError
from edgeprune.contracts.dataset_rules.formats import (
    ARCHIVE_FORMATS,
    DEFAULT_LIMITS,
    RATIO_FLOOR_BYTES,
    TAR_MODE,
    UPLOAD_FORMATS,
    ArchiveLimits,
    dataset_format,
)
from edgeprune.contracts.dataset_rules.image_folder import (
    IMAGE_SUFFIXES,
    SPLIT_TRAIN,
    SPLITS_TEST,
    FolderListing,
    ImageFolderLayout,
    Parts,
    Sample,
    image_folder_layout,
    is_hidden,
)
from edgeprune.contracts.dataset_rules.images import (
    GREY_MODES,
    MAX_IMAGE_PIXELS,
    check_image_size,
    image_channels,
)
from edgeprune.contracts.dataset_rules.members import MemberKind, MemberScan, member_parts
from edgeprune.contracts.dataset_rules.npz import (
    NPZ_ARRAYS,
    ArrayFacts,
    ImageArray,
    NpzLayout,
    check_npz_names,
    class_labels,
    not_finite,
    npz_layout,
)
from edgeprune.contracts.dataset_rules.split import (
    TEST_FRACTION,
    check_classes,
    check_test_channels,
    held_out_counts,
)

__all__ = [
    "ARCHIVE_FORMATS",
    "DEFAULT_LIMITS",
    "GREY_MODES",
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "NPZ_ARRAYS",
    "RATIO_FLOOR_BYTES",
    "SPLITS_TEST",
    "SPLIT_TRAIN",
    "TAR_MODE",
    "TEST_FRACTION",
    "UPLOAD_FORMATS",
    "ArchiveLimits",
    "ArrayFacts",
    "DatasetRuleError",
    "FolderListing",
    "ImageArray",
    "ImageFolderLayout",
    "MemberKind",
    "MemberScan",
    "NpzLayout",
    "Parts",
    "Sample",
    "check_classes",
    "check_image_size",
    "check_npz_names",
    "check_test_channels",
    "class_labels",
    "dataset_format",
    "held_out_counts",
    "image_channels",
    "image_folder_layout",
    "is_hidden",
    "member_parts",
    "not_finite",
    "npz_layout",
]
