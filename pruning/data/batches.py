"""Mini-batches with the paper's shift-and-mirror augmentation, done on whole batches.

In-memory tensors are sliced on the calling thread. `Samples` (image files, 8-bit arrays)
are read either there or, with `workers` > 0, in DataLoader worker processes that decode the
next batches while the device trains on this one. Either way the batch order and the
augmentation come from the caller's generator, on the caller's thread, so a seeded run gives
the same batches with or without workers.
"""

from __future__ import annotations

import multiprocessing
import weakref
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from pruning.data.augmentation import pad_for
from pruning.data.samples import Samples
from pruning.data.types import Inputs


class _SampleReads(Dataset[torch.Tensor]):
    """Item `indices` is the batch of those samples: the workers read whole batches."""

    def __init__(self, samples: Samples):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, indices: torch.Tensor) -> torch.Tensor:
        return self.samples[indices]


class _Plan(Sampler[torch.Tensor]):
    """The batches of the next pass, set before each pass: one loader, and so one set of
    worker processes, serves every epoch and evaluation of its samples."""

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


# Per Samples object and (workers, pin_memory): its loader, kept while the samples live.
_LOADERS: weakref.WeakKeyDictionary[
    Samples, dict[tuple[int, bool], tuple[DataLoader[torch.Tensor], _Plan]]
] = weakref.WeakKeyDictionary()


def _one_thread(_worker: int) -> None:
    # Decoding is per sample; intra-op threads in every worker would only oversubscribe.
    torch.set_num_threads(1)


def _loader(
    samples: Samples, workers: int, pin_memory: bool
) -> tuple[DataLoader[torch.Tensor], _Plan]:
    loaders = _LOADERS.setdefault(samples, {})
    key = (workers, pin_memory)
    if key not in loaders:
        plan = _Plan()
        # A forked child of a process that has run OpenMP or holds other threads' locks can
        # hang (docs/cpu-kernels.md): workers start from a fresh interpreter, once, and stay.
        loader = DataLoader(
            _SampleReads(samples),
            batch_size=None,
            sampler=plan,
            num_workers=workers,
            pin_memory=pin_memory,
            prefetch_factor=2,
            persistent_workers=True,
            worker_init_fn=_one_thread,
            multiprocessing_context=multiprocessing.get_context("spawn"),
        )
        loaders[key] = (loader, plan)
    return loaders[key]


def _read_batches(
    x: Inputs, batches: list[torch.Tensor], workers: int, pin_memory: bool
) -> Iterator[torch.Tensor]:
    if workers <= 0 or not isinstance(x, Samples):
        for idx in batches:
            yield x[idx]
        return
    loader, plan = _loader(x, workers, pin_memory)
    plan.batches = batches
    yield from loader


def iterate_batches(
    x: Inputs,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    augment: bool,
    generator: torch.Generator | None = None,
    workers: int = 0,
    pin_memory: bool = False,
    fill: torch.Tensor | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) batches; the last one may be smaller. Deterministic for a seeded generator.

    `workers` > 0 reads lazily loaded samples in that many worker processes (ignored for
    in-memory tensors); `pin_memory` pins the batches for asynchronous copies to a GPU;
    `fill` is the augmentation's padding value per channel.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    order = torch.randperm(len(x), generator=generator) if shuffle else torch.arange(len(x))
    batches = [order[start : start + batch_size] for start in range(0, len(x), batch_size)]
    for idx, xb in zip(batches, _read_batches(x, batches, workers, pin_memory), strict=True):
        yield (shift_and_mirror(xb, generator, fill) if augment else xb), y[idx]


def shift_and_mirror(
    x: torch.Tensor,
    generator: torch.Generator | None = None,
    fill: torch.Tensor | None = None,
) -> torch.Tensor:
    """Pad by 1/8 of the image side (4 at 32×32), crop back to the input size at a random
    offset, flip half horizontally. The padding is `fill` per channel (0 when not given)."""
    n, _, h, w = x.shape
    pad = pad_for(h, w)
    if fill is None:
        padded = F.pad(x, (pad, pad, pad, pad))
    else:
        level = fill.to(x.dtype).view(1, -1, 1, 1)
        padded = F.pad(x - level, (pad, pad, pad, pad)) + level
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (N, H, 1)
    cols = dx[:, None] + torch.arange(w)  # (N, W)
    # Mirroring is a reversed column index, so crop and flip are one gather.
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]  # (N, 1, W)
    batch = torch.arange(n)[:, None, None]
    # Advanced indices around the channel slice put their broadcast dims first: (N, H, W, C).
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()
