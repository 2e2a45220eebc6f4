"""One image file, from its header: how many pixels it may have, and its channels."""

from __future__ import annotations

from edgeprune.contracts.dataset_rules.errors import DatasetRuleError

# Pillow's own warning threshold (its hard error is at twice this). Decoding more would take
# gigabytes: a decompression bomb.
MAX_IMAGE_PIXELS = 89_478_485
# Pillow modes that are one channel: the API reports such images as (1, H, W). The engine
# reads every image in the model's channels (grey for a 1-channel model, else RGB).
GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F", "P;L"})


def check_image_size(width: int, height: int, name: str) -> None:
    if width * height > MAX_IMAGE_PIXELS:
        raise DatasetRuleError(
            f"image {name!r} has {width}x{height} pixels, over {MAX_IMAGE_PIXELS} "
            "(a decompression bomb?)"
        )


def image_channels(mode: str) -> int:
    return 1 if mode in GREY_MODES else 3
