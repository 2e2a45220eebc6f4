"""How many channels each unit keeps: the initial allocation (step 0) and the adjustment of
an allocation to a FLOPs or parameter target (ALGORITHM.md, 'Targets that the user asks for')."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from pruning.config import InvalidTarget, Target
from pruning.cost import CostModel


def channel_floor(capacity: Sequence[int], min_channels: int, multiple: int = 1) -> list[int]:
    """The fewest channels a unit may keep: min_channels rounded up to the multiple."""
    lowest = -(-min_channels // multiple) * multiple
    return [min(c, lowest) for c in capacity]


def uniform_allocation(
    capacity: Sequence[int], rate: float, min_channels: int, multiple: int = 1
) -> list[int]:
    """a_l = round((1 − p)·C_l) (to a multiple of `multiple`), at least the floor, at most C_l."""
    floor = channel_floor(capacity, min_channels, multiple)
    return [
        min(c, max(f, multiple * round((1.0 - rate) * c / multiple)))
        for c, f in zip(capacity, floor, strict=True)
    ]


def initial_allocation(
    capacity: Sequence[int],
    target: Target,
    cost_model: CostModel,
    min_channels: int,
    multiple: int = 1,
) -> list[int]:
    """Step 0. A FLOPs/params target is met by the uniform rate found by bisection."""
    if target.metric == "channels":
        return uniform_allocation(capacity, target.reduction, min_channels, multiple)
    full = cost_model.cost(capacity, target.metric)
    goal = (1.0 - target.reduction) * full

    def cost_at(rate: float) -> float:
        return cost_model.cost(
            uniform_allocation(capacity, rate, min_channels, multiple), target.metric
        )

    lowest = cost_at(1.0)
    if lowest > goal:
        reachable = 1.0 - lowest / full
        raise InvalidTarget(
            f"a {target.metric} reduction of {target.reduction:.3f} is out of reach for this "
            f"network: pruning every prunable unit to {min_channels} channel(s) gives "
            f"{reachable:.3f}"
        )
    low, high = 0.0, 1.0
    for _ in range(50):
        mid = (low + high) / 2
        if cost_at(mid) > goal:
            low = mid
        else:
            high = mid
    return uniform_allocation(capacity, high, min_channels, multiple)


def top_channels(saliency: Tensor, keep: int) -> Tensor:
    """Boolean mask of the `keep` most salient channels (ties broken by lower index)."""
    mask = torch.zeros(saliency.numel(), dtype=torch.bool, device=saliency.device)
    if keep > 0:
        # A stable sort on the negated scores keeps the lower index first among equals.
        order = torch.sort(-saliency.detach().float(), stable=True).indices
        mask[order[:keep]] = True
    return mask


def adjust_to_target(
    active: Sequence[int],
    saliencies: Sequence[Tensor],
    cost_model: CostModel,
    target: Target,
    *,
    min_channels: int,
    tolerance: float,
    multiple: int = 1,
) -> list[int]:
    """Greedy adjustment of an allocation until cost(a) meets the target.

    Active channels are always each unit's top-a by saliency, so a step moves one a_l by one
    block (`multiple` channels; one channel by default). While above the target, drop the
    block with the least saliency per unit of cost saved; then, while below the target by
    more than `tolerance` (a fraction of the full cost), bring back the block with the most
    saliency per unit of cost added that still fits under the target.
    """
    if target.metric == "channels":
        return list(active)
    metric = target.metric
    capacity = cost_model.capacity.astype(np.int64)
    units = len(capacity)
    full = cost_model.cost(capacity, metric)
    goal = (1.0 - target.reduction) * full
    slack = tolerance * full
    # Prefix sums of each unit's saliencies, best first: the saliency of channels [i, j) of
    # the ranking is prefix[j] - prefix[i].
    prefix = [
        np.concatenate([[0.0], np.cumsum(np.sort(f.detach().cpu().double().numpy())[::-1])])
        for f in saliencies
    ]
    a = np.asarray(active, dtype=np.int64).copy()
    floor = np.asarray(channel_floor(capacity.tolist(), min_channels, multiple), dtype=np.int64)
    diagonal = np.arange(units)
    eps = 1e-12

    def with_each(changed: np.ndarray) -> np.ndarray:
        """U allocations: row u is `a` with unit u set to changed[u]."""
        rows = np.tile(a, (units, 1))
        rows[diagonal, diagonal] = changed
        return rows.astype(np.float64)

    def saliency_between(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        return np.array([prefix[u][upper[u]] - prefix[u][lower[u]] for u in range(units)])

    current = cost_model.cost(a, metric)
    while current > goal:
        down = np.maximum(floor, ((a - 1) // multiple) * multiple)
        removable = a > floor
        if not removable.any():
            raise InvalidTarget(
                f"cannot reach the {metric} target with min_channels={min_channels}"
            )
        saved = current - cost_model.costs(with_each(down), metric)
        lost = saliency_between(np.minimum(down, a), a)
        score = np.where(removable & (saved > 0), lost / np.maximum(saved, eps), np.inf)
        unit = int(np.argmin(score))
        if not np.isfinite(score[unit]):
            raise InvalidTarget(f"cannot reach the {metric} target: no channel saves any cost")
        a[unit] = down[unit]
        current -= float(saved[unit])

    while current < goal - slack:
        up = np.minimum(capacity, (a // multiple + 1) * multiple)
        growable = a < capacity
        if not growable.any():
            break
        added = cost_model.costs(with_each(up), metric) - current
        fits = growable & (current + added <= goal) & (added > 0)
        if not fits.any():
            break
        gained = saliency_between(a, np.maximum(up, a))
        score = np.where(fits, gained / np.maximum(added, eps), -np.inf)
        unit = int(np.argmax(score))
        a[unit] = up[unit]
        current += float(added[unit])
    return [int(x) for x in a]
