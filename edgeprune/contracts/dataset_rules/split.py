"""Classes and the train/test split: at least two classes, each with a training sample, and
a test set, given or held out (`held_out_counts`)."""

from __future__ import annotations

from collections.abc import Sequence

from edgeprune.contracts.dataset_rules.errors import DatasetRuleError

# Without a test split in the data, this fraction of each class is held out for testing.
TEST_FRACTION = 0.2


def check_test_channels(train: int, test: int) -> None:
    if train != test:
        raise DatasetRuleError(f"train has {train} channel(s) but test has {test}")


def held_out_counts(train_counts: Sequence[int], fraction: float = TEST_FRACTION) -> list[int]:
    """How many samples of each class the split holds out: round(fraction * n), keeping at
    least one for training; if that is none at all, one of the first largest class (which
    needs two)."""
    held = [max(0, min(int(fraction * n + 0.5), n - 1)) for n in train_counts]
    if sum(held) == 0:
        largest = max(range(len(train_counts)), key=train_counts.__getitem__, default=0)
        if not train_counts or train_counts[largest] < 2:
            raise DatasetRuleError(
                f"too few samples to hold out a test set ({sum(train_counts)} samples)"
            )
        held[largest] = 1
    return held


def check_classes(
    classes: Sequence[str],
    train_counts: Sequence[int],
    test_samples: int | None,
    fraction: float = TEST_FRACTION,
) -> None:
    """Every class (classes seen only in the test split count) needs a training sample,
    there are at least two, and a test set exists: given (`test_samples`, None when the data
    has none), or held out by `held_out_counts`."""
    if len(classes) < 2:
        raise DatasetRuleError(f"found {len(classes)} class(es); at least 2 are needed")
    absent = [name for name, n in zip(classes, train_counts, strict=True) if n == 0]
    if absent:
        raise DatasetRuleError(f"class(es) {', '.join(absent[:5])} have no training sample")
    if test_samples is None:
        held_out_counts(train_counts, fraction)
    elif test_samples == 0:
        raise DatasetRuleError("the test split is empty")
