"""Mini-batches with the paper's shift-and-mirror augmentation, done on whole batches."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

PAD = 4


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    augment: bool,
    generator: torch.Generator | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (x, y) batches; the last one may be smaller. Deterministic for a seeded generator."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    order = torch.randperm(len(x), generator=generator) if shuffle else torch.arange(len(x))
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        xb = x[idx]
        yield (shift_and_mirror(xb, generator) if augment else xb), y[idx]


def shift_and_mirror(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-pad by 4, crop back to the input size at a random offset, flip half horizontally."""
    n, _, h, w = x.shape
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    dy = torch.randint(0, 2 * PAD + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * PAD + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # (N, H, 1)
    cols = dx[:, None] + torch.arange(w)  # (N, W)
    # Mirroring is a reversed column index, so crop and flip are one gather.
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, :]  # (N, 1, W)
    batch = torch.arange(n)[:, None, None]
    # Advanced indices around the channel slice put their broadcast dims first: (N, H, W, C).
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()
