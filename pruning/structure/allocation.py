"""How many channels each unit keeps: the initial allocation (step 0) and the adjustment of
an allocation to a FLOPs or parameter target (ALGORITHM.md, 'Targets that the user asks for')."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from pruning.config import InvalidTarget, Target
from pruning.network.cost import CostModel


def channel_floor(
    capacity: Sequence[int], min_channels: int, multiple: int = 1, min_fraction: float = 0.0
) -> list[int]:
    """The fewest channels each unit may keep: max(min_channels, ⌈min_fraction·C_l⌉), rounded
    up to the multiple, at most C_l. The fraction keeps a target fit from starving a wide,
    full-resolution unit (ALGORITHM.md, 'Targets')."""
    floors = []
    for c in capacity:
        lowest = max(min_channels, math.ceil(min_fraction * c - 1e-9))
        floors.append(min(c, -(-lowest // multiple) * multiple))
    return floors


def reachable_reduction(
    capacity: Sequence[int], floors: Sequence[int], cost_model: CostModel, metric: str
) -> float:
    """The largest reduction of `metric` the floors allow: every unit at its floor. A target
    close to it leaves the allocation little to choose (`pruning.report.allocation_room_note`)."""
    if metric == "channels":
        return 1.0 - sum(floors) / sum(capacity)
    return 1.0 - cost_model.cost(floors, metric) / cost_model.cost(capacity, metric)


def uniform_allocation(
    capacity: Sequence[int], rate: float, floors: Sequence[int], multiple: int = 1
) -> list[int]:
    """a_l = round((1 − p)·C_l) (to a multiple of `multiple`), at least the floor, at most C_l."""
    return [
        min(c, max(f, multiple * round((1.0 - rate) * c / multiple)))
        for c, f in zip(capacity, floors, strict=True)
    ]


def require_reachable(
    capacity: Sequence[int], target: Target, cost_model: CostModel, floors: Sequence[int]
) -> None:
    """InvalidTarget when even every unit at its floor misses the target: checked before any
    training (and for a channel budget too, which would otherwise stop at the floors)."""
    reachable = reachable_reduction(capacity, floors, cost_model, target.metric)
    if target.reduction > reachable:
        raise InvalidTarget(
            f"a {target.metric} reduction of {target.reduction:.3f} is out of reach for this "
            f"network: pruning every prunable unit to its floor ({min(floors)}–{max(floors)} "
            f"channels) gives {reachable:.3f}"
        )


def initial_allocation(
    capacity: Sequence[int],
    target: Target,
    cost_model: CostModel,
    floors: Sequence[int],
    multiple: int = 1,
) -> list[int]:
    """Step 0. A FLOPs/params target is met by the uniform rate found by bisection."""
    require_reachable(capacity, target, cost_model, floors)
    if target.metric == "channels":
        return uniform_allocation(capacity, target.reduction, floors, multiple)
    full = cost_model.cost(capacity, target.metric)
    goal = (1.0 - target.reduction) * full

    def cost_at(rate: float) -> float:
        return cost_model.cost(uniform_allocation(capacity, rate, floors, multiple), target.metric)

    rate = _bisect(lambda r: cost_at(r) <= goal, fitting=1.0, failing=0.0)
    return uniform_allocation(capacity, rate, floors, multiple)


def _bisect(fits: Callable[[float], bool], *, fitting: float, failing: float) -> float:
    """The point nearest the boundary on the `fitting` side, between a point that fits and
    one that does not (cost is monotone in the searched quantity)."""
    for _ in range(50):
        mid = (fitting + failing) / 2
        if fits(mid):
            fitting = mid
        else:
            failing = mid
    return fitting


def scaled_allocation(
    proposed: Sequence[int],
    capacity: Sequence[int],
    scale: float,
    floors: Sequence[int],
    multiple: int = 1,
) -> list[int]:
    """round(scale·a_l) to the multiple, clamped to [floor_l, C_l]."""
    return [
        min(c, max(f, multiple * round(scale * a / multiple)))
        for a, c, f in zip(proposed, capacity, floors, strict=True)
    ]


def scale_to_target(
    proposed: Sequence[int],
    cost_model: CostModel,
    target: Target,
    *,
    floors: Sequence[int],
    multiple: int = 1,
) -> list[int]:
    """The largest common scale α of the learned widths whose cost meets the target.

    Scaling every unit by one factor keeps the proportions redistribution learned: a unit
    that was given channels keeps its lead over the others, whatever each channel costs.
    The cost only grows with α, so bisection finds the boundary.
    """
    capacity = [int(c) for c in cost_model.capacity]
    full = cost_model.cost(capacity, target.metric)
    goal = (1.0 - target.reduction) * full

    def cost_at(scale: float) -> float:
        return cost_model.cost(
            scaled_allocation(proposed, capacity, scale, floors, multiple), target.metric
        )

    require_reachable(capacity, target, cost_model, floors)
    high = max(c / max(a, 1) for a, c in zip(proposed, capacity, strict=True)) + 1.0
    if cost_at(high) <= goal:
        return capacity
    scale = _bisect(lambda x: cost_at(x) <= goal, fitting=0.0, failing=high)
    return scaled_allocation(proposed, capacity, scale, floors, multiple)


def top_channels(saliency: Tensor, keep: int) -> Tensor:
    """Boolean mask of the `keep` most salient channels (ties broken by lower index)."""
    mask = torch.zeros(saliency.numel(), dtype=torch.bool, device=saliency.device)
    if keep > 0:
        # A stable sort on the negated scores keeps the lower index first among equals.
        order = torch.sort(-saliency.detach().float(), stable=True).indices
        mask[order[:keep]] = True
    return mask


def stable_channels(saliency: Tensor, current: Tensor, keep: int) -> Tensor:
    """Boolean mask of `keep` channels that changes `current` as little as possible: the most
    salient inactive channels join when the unit grows, the least salient active ones leave
    when it shrinks (ties broken by lower index)."""
    mask = current.clone().bool()
    change = keep - int(mask.sum())
    if change == 0:
        return mask
    scores = saliency.detach().float()
    if change > 0:
        candidates = torch.where(mask, torch.full_like(scores, -torch.inf), scores)
        order = torch.sort(-candidates, stable=True).indices
        mask[order[:change]] = True
    else:
        candidates = torch.where(mask, scores, torch.full_like(scores, torch.inf))
        order = torch.sort(candidates, stable=True).indices
        mask[order[:-change]] = False
    return mask


def adjust_to_target(
    active: Sequence[int],
    saliencies: Sequence[Tensor],
    cost_model: CostModel,
    target: Target,
    *,
    floors: Sequence[int],
    tolerance: float,
    multiple: int = 1,
    reference: Sequence[float] | None = None,
) -> list[int]:
    """Greedy adjustment of an allocation until cost(a) meets the target.

    With a `reference` shape (the widths the allocation should stay proportional to: the
    capacities for the uniform start, redistribution's proposal afterwards), each step
    changes the unit that is furthest from that shape (the largest a_l/ref_l when removing,
    the smallest when adding) and saliency per unit of cost only breaks ties; so rounding a
    small network onto the target does not tilt its allocation towards the cheapest units.

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
    floor = np.asarray(floors, dtype=np.int64)
    diagonal = np.arange(units)
    eps = 1e-12
    shape = None if reference is None else np.maximum(np.asarray(reference, dtype=float), eps)

    def pick(valid: np.ndarray, score: np.ndarray, *, largest_ratio: bool) -> int:
        """Among valid units: the best score, or (with a reference) the unit furthest from
        the reference shape, the best score among those."""
        if shape is None:
            return int(np.argmin(np.where(valid, score, np.inf)))
        ratio = a / shape
        ratio = np.where(valid, ratio if largest_ratio else -ratio, -np.inf)
        best = np.flatnonzero(ratio >= ratio.max() - 1e-9)
        return int(best[np.argmin(score[best])])

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
            raise InvalidTarget(f"cannot reach the {metric} target above the channel floors")
        saved = current - cost_model.costs(with_each(down), metric)
        lost = saliency_between(np.minimum(down, a), a)
        valid = removable & (saved > 0)
        if not valid.any():
            raise InvalidTarget(f"cannot reach the {metric} target: no channel saves any cost")
        unit = pick(valid, lost / np.maximum(saved, eps), largest_ratio=True)
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
        unit = pick(fits, -gained / np.maximum(added, eps), largest_ratio=False)
        a[unit] = up[unit]
        current += float(added[unit])
    return [int(x) for x in a]
