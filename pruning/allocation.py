"""How many channels each unit keeps: the initial allocation (step 0) and the adjustment of
an allocation to a FLOPs or parameter target (ALGORITHM.md, 'Targets that the user asks for')."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from pruning.config import InvalidTarget, Target
from pruning.cost import CostModel


def uniform_allocation(capacity: Sequence[int], rate: float, min_channels: int) -> list[int]:
    """a_l = round((1 − p)·C_l), at least min_channels (never zero)."""
    return [min(c, max(min_channels, round((1.0 - rate) * c))) for c in capacity]


def initial_allocation(
    capacity: Sequence[int], target: Target, cost_model: CostModel, min_channels: int
) -> list[int]:
    """Step 0. A FLOPs/params target is met by the uniform rate found by bisection."""
    if target.metric == "channels":
        return uniform_allocation(capacity, target.reduction, min_channels)
    full = cost_model.cost(capacity, target.metric)
    goal = (1.0 - target.reduction) * full
    lowest = cost_model.cost(uniform_allocation(capacity, 1.0, min_channels), target.metric)
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
        if cost_model.cost(uniform_allocation(capacity, mid, min_channels), target.metric) > goal:
            low = mid
        else:
            high = mid
    return uniform_allocation(capacity, high, min_channels)


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
) -> list[int]:
    """Greedy adjustment of an allocation until cost(a) meets the target.

    Active channels are always each unit's top-a by saliency, so a step changes one a_l by
    one. While above the target, deactivate the channel with the least saliency per unit of
    cost saved; then, while below the target by more than `tolerance` (a fraction of the full
    cost), re-activate the channel with the most saliency per unit of cost added that still
    fits under the target.
    """
    if target.metric == "channels":
        return list(active)
    metric = target.metric
    capacity = cost_model.capacity.astype(np.int64)
    units = len(capacity)
    full = cost_model.cost(capacity, metric)
    goal = (1.0 - target.reduction) * full
    slack = tolerance * full
    ranked = [np.sort(f.detach().cpu().double().numpy())[::-1] for f in saliencies]
    a = np.asarray(active, dtype=np.int64).copy()
    floor = np.minimum(min_channels, capacity)
    eye = np.eye(units, dtype=np.int64)
    eps = 1e-12

    current = cost_model.cost(a, metric)
    while current > goal:
        removable = a > floor
        if not removable.any():
            raise InvalidTarget(
                f"cannot reach the {metric} target with min_channels={min_channels}"
            )
        saved = current - cost_model.costs((a[None, :] - eye).astype(np.float64), metric)
        weakest = np.array([ranked[u][a[u] - 1] if a[u] > 0 else np.inf for u in range(units)])
        score = np.where(removable & (saved > 0), weakest / np.maximum(saved, eps), np.inf)
        unit = int(np.argmin(score))
        if not np.isfinite(score[unit]):
            raise InvalidTarget(f"cannot reach the {metric} target: no channel saves any cost")
        a[unit] -= 1
        current -= float(saved[unit])

    while current < goal - slack:
        growable = a < capacity
        if not growable.any():
            break
        added = cost_model.costs((a[None, :] + eye).astype(np.float64), metric) - current
        fits = growable & (current + added <= goal) & (added > 0)
        if not fits.any():
            break
        strongest = np.array(
            [ranked[u][a[u]] if a[u] < capacity[u] else -np.inf for u in range(units)]
        )
        score = np.where(fits, strongest / np.maximum(added, eps), -np.inf)
        unit = int(np.argmax(score))
        a[unit] += 1
        current += float(added[unit])
    return [int(x) for x in a]
