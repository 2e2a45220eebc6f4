"""Channel redistribution across units (Algorithm 1; eqs. 8 and 9), after sparse momentum.

Pure functions on lists of integers, so the arithmetic is tested on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def layer_significance(saliencies: Sequence[Sequence[float]], active: Sequence[int]) -> list[float]:
    """Eq. (8): ξ_l = Σ of the top-a_l saliencies of unit l, normalised to sum to 1."""
    raw = [sum(sorted(f, reverse=True)[:a]) for f, a in zip(saliencies, active, strict=True)]
    total = sum(raw)
    if total <= 0:
        # No signal anywhere (e.g. a dead network): fall back to regrowing by current size.
        total_active = sum(active)
        return [a / total_active for a in active] if total_active else [0.0 for _ in active]
    return [r / total for r in raw]


def largest_remainder(shares: Sequence[float], total: int) -> list[int]:
    """Round non-negative `shares` (summing to `total`) to integers with exactly that sum."""
    floors = [math.floor(s) for s in shares]
    left = total - sum(floors)
    if left < 0:
        raise ValueError(f"the shares' floors already sum to {sum(floors)}, more than {total}")
    order = sorted(range(len(shares)), key=lambda i: (shares[i] - floors[i], -i), reverse=True)
    for i in order[:left]:
        floors[i] += 1
    return floors


def cap_and_spill(active: list[int], capacity: Sequence[int]) -> list[int]:
    """Cap a_l ≤ C_l; spread each excess evenly over units that still have room, repeatedly."""
    a = list(active)
    excess = sum(max(0, x - c) for x, c in zip(a, capacity, strict=True))
    a = [min(x, c) for x, c in zip(a, capacity, strict=True)]
    while excess > 0:
        room = [i for i, (x, c) in enumerate(zip(a, capacity, strict=True)) if x < c]
        if not room:
            raise ValueError("more channels to place than the network has")
        share, rest = divmod(excess, len(room))
        excess = 0
        for rank, i in enumerate(room):
            want = share + (1 if rank < rest else 0)
            take = min(want, capacity[i] - a[i])
            a[i] += take
            excess += want - take
    return a


def apply_floor(
    active: list[int], capacity: Sequence[int], floors: int | Sequence[int]
) -> list[int]:
    """Raise every unit to its floor (an int is min(floor, C_l) for every unit), taking the
    channels from the units furthest above their floors so the total stays the same whenever
    that is possible."""
    a = list(active)
    if isinstance(floors, int):
        floors = [min(floors, c) for c in capacity]
    deficit = sum(max(0, f - x) for x, f in zip(a, floors, strict=True))
    a = [max(x, f) for x, f in zip(a, floors, strict=True)]
    while deficit > 0:
        donors = [i for i in range(len(a)) if a[i] > floors[i]]
        if not donors:
            break
        richest = max(donors, key=lambda i: (a[i] - floors[i], -i))
        a[richest] -= 1
        deficit -= 1
    return a


def redistribute(
    active: Sequence[int],
    capacity: Sequence[int],
    significance: Sequence[float],
    *,
    release: float = 0.5,
    min_channels: int | Sequence[int] = 1,
    pooled: bool = False,
) -> list[int]:
    """One redistribution (ALGORITHM.md step 2): release ⌊s·a_l⌋ from every unit, regrow the
    released total in proportion to ξ (largest remainder), cap-and-spill, then the floor
    (`min_channels`: one number for every unit, or one per unit).

    `pooled` releases ⌊s·Σa_l⌋ in all, shared by largest remainder of s·a_l: per unit the
    floor is 0 whenever s·a_l < 1, so narrow units would stop moving once s is small.

    Σ a_l is invariant, unless the floor cannot be met by taking from other units.
    """
    if not (len(active) == len(capacity) == len(significance)):
        raise ValueError("active, capacity and significance must have one entry per unit")
    if pooled:
        # The total from the shares' own float sum: s·Σa_l rounds apart from Σ s·a_l (0.7 on
        # 10, 30, 50 gives 62.99... against 7 + 21 + 35) and would fall below their floors.
        shares = [release * a for a in active]
        released = largest_remainder(shares, math.floor(sum(shares)))
    else:
        released = [math.floor(release * a) for a in active]
    kept = [a - r for a, r in zip(active, released, strict=True)]
    pool = sum(released)
    xi_total = sum(significance)
    weights = [x / xi_total for x in significance] if xi_total > 0 else [1 / len(kept)] * len(kept)
    grown = largest_remainder([w * pool for w in weights], pool)
    a = [k + g for k, g in zip(kept, grown, strict=True)]
    a = cap_and_spill(a, capacity)
    return apply_floor(a, capacity, min_channels)
