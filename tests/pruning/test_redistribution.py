"""Algorithm 1: release, proportional regrowth with largest remainder, cap-and-spill, floor."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pruning.structure.redistribution import (
    apply_floor,
    cap_and_spill,
    largest_remainder,
    layer_significance,
    redistribute,
)


def test_worked_example_from_algorithm_md() -> None:
    assert redistribute([4, 8, 16], [8, 16, 32], [0.125, 0.375, 0.5], release=0.5) == [4, 9, 15]


def test_largest_remainder_keeps_the_total() -> None:
    assert largest_remainder([1.75, 5.25, 7.0], 14) == [2, 5, 7]


def test_cap_and_spill_spreads_excess_evenly_and_repeats() -> None:
    # Unit 0 is 6 over its cap; units 1 and 2 get 3 each, but unit 1 can only take 1,
    # so its leftover 2 spill again to unit 2.
    assert cap_and_spill([10, 3, 0], [4, 4, 20]) == [4, 4, 5]


def test_redistribution_that_hits_the_cap() -> None:
    # All significance on unit 0, which can only hold 8: the rest spills to unit 1.
    a = redistribute([4, 8], [8, 16], [1.0, 0.0], release=0.5)
    assert a == [8, 4]


def test_pooled_release_moves_units_narrower_than_one_over_s() -> None:
    # s = 0.13 on units of 5 and 7: ⌊s·a_l⌋ is 0 for both, so per unit nothing moves however
    # strongly ξ favours unit 0. Pooled releases ⌊0.13·12⌋ = 1 channel, from the unit with
    # the larger remainder (7·0.13 = 0.91), and regrows it in unit 0.
    assert redistribute([5, 7], [16, 16], [1.0, 0.0], release=0.13) == [5, 7]
    assert redistribute([5, 7], [16, 16], [1.0, 0.0], release=0.13, pooled=True) == [6, 6]
    # When every s·a_l is whole, pooled releases what per unit does.
    worked = ([4, 8, 16], [8, 16, 32], [0.125, 0.375, 0.5])
    assert redistribute(*worked, release=0.5, pooled=True) == [4, 9, 15]
    # 0.7·(10 + 30 + 50) is 62.99... in floats while the units' shares are 7, 21 and 35:
    # pooled still releases exactly those, as per unit does.
    case = ([10, 30, 50], [64, 64, 64], [0.5, 0.3, 0.2])
    assert redistribute(*case, release=0.7, pooled=True) == redistribute(*case, release=0.7)


def test_largest_remainder_refuses_a_total_below_the_floors() -> None:
    with pytest.raises(ValueError, match="more than 62"):
        largest_remainder([7.0, 21.0, 35.0], 62)


def test_floor_takes_from_the_widest() -> None:
    assert apply_floor([0, 5, 9], [8, 16, 16], 2) == [2, 5, 7]
    a = redistribute([2, 30], [8, 32], [0.0, 1.0], release=0.5, min_channels=1)
    assert a[0] >= 1 and sum(a) == 32


def test_significance_is_the_normalised_top_a_sum() -> None:
    xi = layer_significance([[0.5, 0.1, 0.4], [1.0, 0.0]], [2, 1])
    assert xi == [0.9 / 1.9, 1.0 / 1.9]


@st.composite
def allocations(draw: st.DrawFn) -> tuple[list[int], list[int], list[float], float]:
    n = draw(st.integers(1, 12))
    capacity = draw(st.lists(st.integers(1, 256), min_size=n, max_size=n))
    active = [draw(st.integers(1, c)) for c in capacity]
    significance = draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))
    release = draw(st.sampled_from([0.0, 0.03, 0.13, 0.25, 0.5, 0.75, 1.0]))
    return active, capacity, significance, release


@settings(max_examples=400, deadline=None)
@given(allocations(), st.booleans())
def test_sum_is_invariant_and_bounds_hold(
    case: tuple[list[int], list[int], list[float], float], pooled: bool
) -> None:
    active, capacity, significance, release = case
    a = redistribute(active, capacity, significance, release=release, min_channels=1, pooled=pooled)
    assert sum(a) == sum(active)
    assert all(1 <= x <= c for x, c in zip(a, capacity, strict=True))
