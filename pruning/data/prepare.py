"""The steps shared by every source: checks, resize, train/test split and normalisation."""

from __future__ import annotations

import torch

from edgeprune.contracts.dataset_rules import (
    DatasetRuleError,
    check_classes,
    check_test_channels,
    held_out_counts,
)
from pruning.data.samples import Samples, resize_batch
from pruning.data.types import DataError, Inputs, RawData, TaskData

_RESIZE_CHUNK = 2048  # images per resize / statistics step, to bound peak memory


def finalise(
    raw: RawData,
    *,
    source: str,
    input_size: tuple[int, int] | None,
    in_channels: int | None,
    test_fraction: float,
    seed: int,
) -> TaskData:
    """Check, resize, split (when the source has no test set) and normalise `raw`."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError(f"test_fraction must be in (0, 1), got {test_fraction}")
    channels = raw.x_train.shape[1]
    if in_channels is not None and channels != in_channels:
        raise DataError(
            f"{source}: the data has {channels} channel(s) "
            f"but in_channels={in_channels} was requested"
        )
    train_counts = torch.bincount(raw.y_train, minlength=len(raw.classes)).tolist()
    try:
        if raw.x_test is not None:
            check_test_channels(channels, raw.x_test.shape[1])
        test_samples = None if raw.y_test is None else len(raw.y_test)
        check_classes(raw.classes, train_counts, test_samples, test_fraction)
    except DatasetRuleError as exc:
        raise DataError(f"{source}: {exc}") from None
    size = input_size or (int(raw.x_train.shape[2]), int(raw.x_train.shape[3]))
    x_train = resize(raw.x_train, size)
    if raw.x_test is None or raw.y_test is None:
        train_idx, test_idx = split_indices(raw.y_train, test_fraction, seed, source)
        x_test, y_test = _take(x_train, test_idx), raw.y_train[test_idx]
        x_train, y_train = _take(x_train, train_idx), raw.y_train[train_idx]
    else:
        x_test, y_test = resize(raw.x_test, size), raw.y_test
        y_train = raw.y_train
    mean, std = channel_stats(x_train)
    return TaskData(
        x_train=normalise_(x_train, mean, std),
        y_train=y_train,
        x_test=normalise_(x_test, mean, std),
        y_test=y_test,
        classes=list(raw.classes),
        input_shape=(channels, size[0], size[1]),
        mean=mean.tolist(),
        std=std.tolist(),
        source=source,
        value_scale=raw.value_scale,
        kind=raw.kind,
    )


def _take(x: Inputs, index: torch.Tensor) -> Inputs:
    return x.subset(index) if isinstance(x, Samples) else x[index]


def resize(x: Inputs, size: tuple[int, int]) -> Inputs:
    """Bilinear, antialiased resize of (N, C, H, W) floats; a no-op when the size matches.
    Lazily read samples are resized as each batch is read."""
    if isinstance(x, Samples):
        return x.resized(size)
    if tuple(x.shape[2:]) == tuple(size):
        return x
    if min(size) < 1:
        raise DataError(f"input_size must be positive, got {size}")
    chunks = [
        resize_batch(x[i : i + _RESIZE_CHUNK], size) for i in range(0, x.shape[0], _RESIZE_CHUNK)
    ]
    return torch.cat(chunks) if chunks else x.new_zeros((0, x.shape[1], *size))


def split_indices(
    y: torch.Tensor, test_fraction: float, seed: int, source: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic stratified split: each class, in a random order fixed by `seed`, sends
    the first `held_out_counts` of its samples to test (the rule the API checks uploads by)."""
    generator = torch.Generator().manual_seed(seed)
    shuffled = []
    for label in torch.unique(y).tolist():
        members = torch.nonzero(y == label).flatten()
        shuffled.append(members[torch.randperm(len(members), generator=generator)])
    try:
        held = held_out_counts([len(m) for m in shuffled], test_fraction)
    except DatasetRuleError as exc:
        raise DataError(f"{source}: {exc}") from None
    test = torch.cat([m[:n] for m, n in zip(shuffled, held, strict=True)])
    train = torch.cat([m[n:] for m, n in zip(shuffled, held, strict=True)])
    return torch.sort(train).values, torch.sort(test).values


def channel_stats(x: Inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over (N, H, W); a constant channel gets std 1.

    One streaming pass, accumulated in float64 over chunks: CIFAR-sized data needs no
    full-size copy, and lazily read images are decoded a chunk at a time.
    """
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    chunk = x.chunk_size() if isinstance(x, Samples) else _RESIZE_CHUNK
    for start in range(0, x.shape[0], chunk):
        block = x[start : start + chunk].double()
        total += block.sum(dim=(0, 2, 3))
        squares += block.square().sum(dim=(0, 2, 3))
    count = max(x.shape[0] * x.shape[2] * x.shape[3], 1)
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(0).sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return mean.float(), std.float()


def normalise_(x: Inputs, mean: torch.Tensor, std: torch.Tensor) -> Inputs:
    """In place: the loaders own their tensors, and a second CIFAR-sized copy is 600 MB.
    Lazily read samples are normalised as each batch is read."""
    if isinstance(x, Samples):
        return x.normalised(mean, std)
    return x.sub_(mean[None, :, None, None]).div_(std[None, :, None, None])


def labels_to_indices(
    y_train: torch.Tensor, y_test: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """Map arbitrary integer labels to 0..K-1 in sorted order; class names are the labels."""
    values = torch.unique(y_train if y_test is None else torch.cat([y_train, y_test]))
    classes = [str(v) for v in values.tolist()]
    train = torch.searchsorted(values, y_train)
    test = torch.searchsorted(values, y_test) if y_test is not None else None
    return train, test, classes
