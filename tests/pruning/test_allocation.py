"""Step 0 and the target fit: floors, the uniform bisection, the common scale of the learned
widths, the greedy correction, top-k masks, and what the structure learner records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pruning.config import CompressConfig, InvalidTarget, Target
from pruning.network.cost import CostModel
from pruning.network.dependency import DependencyAdapter
from pruning.network.units import unit_widths
from pruning.report import ALLOCATION_ROOM, allocation_room_note
from pruning.structure.allocation import (
    adjust_to_target,
    channel_floor,
    initial_allocation,
    reachable_reduction,
    scale_to_target,
    stable_channels,
    top_channels,
    uniform_allocation,
)
from pruning.structure.gates import UnitGates
from pruning.structure.learner import Redistribution, StructureLearner, _restore_budget
from pruning.structure.saliency import update_saliency
from tests.pruning.engine_helpers import tiny_model


def _vgg() -> tuple[torch.nn.Module, list[int], CostModel, list]:  # type: ignore[type-arg]
    model = tiny_model("vgg11").eval()
    units = model.prunable_units()  # type: ignore[operator]
    capacity = unit_widths(model, units)
    example = torch.randn(1, 1, 32, 32)
    adapter = DependencyAdapter(model, example, units)
    return model, capacity, CostModel.build(model, example, adapter.couplings(), capacity), units


def _reduction(cost: CostModel, a: list[int], metric: str = "flops") -> float:
    return 1 - cost.cost(a, metric) / cost.cost([int(c) for c in cost.capacity], metric)


def test_floor_scales_with_width_and_respects_the_multiple() -> None:
    assert channel_floor([8, 32, 128], 1) == [1, 1, 1]
    assert channel_floor([8, 32, 128], 1, min_fraction=0.1) == [1, 4, 13]
    assert channel_floor([8, 32, 128], 1, multiple=8, min_fraction=0.1) == [8, 8, 16]
    assert channel_floor([4, 32], 3, multiple=8) == [4, 8]  # never above C_l


def test_uniform_allocation_rounds_and_clamps() -> None:
    assert uniform_allocation([8, 16, 32], 0.5, [1, 1, 1]) == [4, 8, 16]
    assert uniform_allocation([8, 16, 32], 0.99, [2, 2, 2]) == [2, 2, 2]
    floors = channel_floor([8, 16, 30], 1, multiple=8)
    assert uniform_allocation([8, 16, 30], 0.5, floors, multiple=8) == [8, 8, 16]


@pytest.mark.parametrize(("metric", "reduction"), [("flops", 0.5), ("flops", 0.8), ("params", 0.6)])
def test_initial_allocation_is_the_uniform_rate_that_meets_the_target(
    metric: str, reduction: float
) -> None:
    _, capacity, cost, _ = _vgg()
    floors = channel_floor(capacity, 1)
    a = initial_allocation(capacity, Target(metric, reduction), cost, floors)  # type: ignore[arg-type]
    assert _reduction(cost, a, metric) >= reduction - 1e-9
    rates = [1 - x / c for x, c in zip(a, capacity, strict=True)]
    assert max(rates) - min(rates) < 0.2  # uniform up to rounding on narrow units
    # One channel more everywhere would miss the target: the rate is the smallest that works.
    assert (
        _reduction(cost, [min(c, x + 1) for x, c in zip(a, capacity, strict=True)], metric)
        < reduction
    )


def test_initial_allocation_out_of_reach_names_the_floor() -> None:
    _, capacity, cost, _ = _vgg()
    with pytest.raises(InvalidTarget, match="out of reach"):
        initial_allocation(
            capacity, Target("flops", 0.95), cost, channel_floor(capacity, 1, 1, 0.5)
        )


def test_reachable_reduction_is_every_unit_at_its_floor() -> None:
    _, capacity, cost, _ = _vgg()
    floors = channel_floor(capacity, 1, 1, 0.25)
    for metric in ("flops", "params"):
        reachable = reachable_reduction(capacity, floors, cost, metric)
        assert reachable == pytest.approx(_reduction(cost, floors, metric))
        assert 0.5 < reachable < 1.0
        # Just past it the target is refused, just inside it is met at the floors.
        with pytest.raises(InvalidTarget, match="out of reach"):
            initial_allocation(capacity, Target(metric, reachable + 0.01), cost, floors)  # type: ignore[arg-type]
        inside = initial_allocation(capacity, Target(metric, reachable - 1e-6), cost, floors)  # type: ignore[arg-type]
        assert inside == floors
    assert reachable_reduction([8, 32], [1, 4], cost, "channels") == pytest.approx(1 - 5 / 40)
    # A channel budget past the floors is refused too, not clamped to them.
    with pytest.raises(InvalidTarget, match=r"a channels reduction of 0\.900 is out of reach"):
        initial_allocation([8, 32], Target("channels", 0.9), cost, [1, 4])
    assert initial_allocation([8, 32], Target("channels", 0.875), cost, [1, 4]) == [1, 4]


def test_the_room_note_speaks_only_when_the_floors_pin_the_allocation() -> None:
    assert allocation_room_note("flops", 0.70, 0.851) is None
    assert allocation_room_note("flops", 0.85 - ALLOCATION_ROOM, 0.85) is None
    note = allocation_room_note("flops", 0.85, 0.851)
    assert note is not None and "85.0%" in note and "85.1%" in note and "within 0.1%" in note
    # A target past the limit never gets here (refused), but the note would not go negative.
    assert "within 0.0%" in (allocation_room_note("params", 0.9, 0.89) or "")


def test_scale_keeps_the_learned_proportions_and_meets_the_target() -> None:
    _, capacity, cost, _ = _vgg()
    # Redistribution gave the first (full-resolution, most expensive) unit 3/4 of its
    # channels and the others half: a common scale keeps that ordering.
    proposed = [3 * capacity[0] // 4] + [c // 2 for c in capacity[1:]]
    floors = channel_floor(capacity, 1)
    fitted = scale_to_target(proposed, cost, Target("flops", 0.85), floors=floors)
    assert 0.85 - 1e-9 <= _reduction(cost, fitted) < 0.88
    ratios = np.array(fitted) / np.array(proposed)
    assert ratios.max() < 1 and ratios.max() - ratios.min() < 0.2  # one factor, up to rounding
    shares = np.array(fitted) / np.array(capacity)
    assert shares[0] == shares.max()


def test_scale_grows_the_widths_when_the_proposal_is_under_the_target() -> None:
    _, capacity, cost, _ = _vgg()
    proposed = [max(1, c // 8) for c in capacity]
    fitted = scale_to_target(
        proposed, cost, Target("flops", 0.5), floors=channel_floor(capacity, 1)
    )
    assert sum(fitted) > sum(proposed)
    assert 0.5 - 1e-9 <= _reduction(cost, fitted) < 0.6


def test_greedy_correction_reaches_the_target_from_both_sides() -> None:
    _, capacity, cost, _ = _vgg()
    saliency = [torch.rand(c, generator=torch.Generator().manual_seed(c)) for c in capacity]
    floors = channel_floor(capacity, 1)
    target = Target("flops", 0.5)
    from_above = adjust_to_target(capacity, saliency, cost, target, floors=floors, tolerance=0.005)
    from_below = adjust_to_target(floors, saliency, cost, target, floors=floors, tolerance=0.005)
    for a in (from_above, from_below):
        assert 0.5 - 1e-9 <= _reduction(cost, a) <= 0.5 + 0.005 + 1e-9
        assert all(f <= x <= c for f, x, c in zip(floors, a, capacity, strict=True))
    # A channels target is left alone (the budget is kept by redistribution itself).
    assert adjust_to_target(
        [3, 4], [], cost, Target("channels", 0.5), floors=[1, 1], tolerance=0
    ) == [3, 4]


def test_proportional_correction_keeps_the_reference_shape() -> None:
    """From the floors up to the target: by saliency per cost the cheap deep units fill up
    first; with the capacities as reference every unit keeps about the same fraction."""
    _, capacity, cost, _ = _vgg()
    saliency = [torch.ones(c) / c for c in capacity]  # eq. (6): every unit sums to one
    floors = channel_floor(capacity, 1)
    target = Target("flops", 0.6)
    by_cost = adjust_to_target(floors, saliency, cost, target, floors=floors, tolerance=0.005)
    shaped = adjust_to_target(
        floors, saliency, cost, target, floors=floors, tolerance=0.005, reference=capacity
    )
    for a in (by_cost, shaped):
        assert 0.6 - 1e-9 <= _reduction(cost, a) <= 0.6 + 0.005 + 1e-9

    def spread(a: list[int]) -> float:
        fractions = [x / c for x, c in zip(a, capacity, strict=True)]
        return max(fractions) - min(fractions)

    assert spread(shaped) <= 1 / min(capacity) + 1e-9  # one channel of the narrowest unit
    assert spread(by_cost) > 2 * spread(shaped)


def test_top_channels_picks_the_most_salient_and_breaks_ties_by_index() -> None:
    saliency = torch.tensor([0.5, 0.9, 0.5, 0.1, 0.5])
    assert top_channels(saliency, 2).tolist() == [True, True, False, False, False]
    assert top_channels(saliency, 3).tolist() == [True, True, True, False, False]
    assert not top_channels(saliency, 0).any()
    assert top_channels(saliency, 5).all()


def test_stable_channels_change_only_what_the_count_asks() -> None:
    saliency = torch.tensor([0.1, 0.9, 0.5, 0.8, 0.2])
    current = torch.tensor([True, False, True, False, False])
    # Same count: the trained channels stay, though 1 and 3 are now more salient.
    assert stable_channels(saliency, current, 2).tolist() == current.tolist()
    # Growing adds the most salient masked channels.
    assert stable_channels(saliency, current, 3).tolist() == [True, True, True, False, False]
    assert stable_channels(saliency, current, 4).tolist() == [True, True, True, True, False]
    # Shrinking drops the least salient active channel.
    assert stable_channels(saliency, current, 1).tolist() == [False, False, True, False, False]
    assert not stable_channels(saliency, current, 0).any()
    assert current.tolist() == [True, False, True, False, False]  # not modified in place


def test_stable_selection_keeps_the_masks_when_the_counts_hold() -> None:
    for selection, kept in (("stable", True), ("saliency", False)):
        learner = _learner(
            CompressConfig(target=Target("flops", 0.5), selection=selection)  # type: ignore[arg-type]
        )
        learner.saliency = [torch.linspace(0, 1, c) for c in learner.capacity]
        learner.finish_calibration()
        before = [m.clone() for m in learner.masks()]
        learner.saliency = [torch.linspace(1, 0, c) for c in learner.capacity]  # order reversed
        step = learner.redistribute(0.0)
        same_counts = step.allocation == step.before
        assert same_counts
        unchanged = all(torch.equal(a, b) for a, b in zip(before, learner.masks(), strict=True))
        assert unchanged == kept
        # A resumed learner restores the very masks, whatever the saliency now says.
        state = learner.state_dict()
        other = _learner(CompressConfig(target=Target("flops", 0.5)))
        other.load_state_dict(state)
        for a, b in zip(learner.masks(), other.masks(), strict=True):
            assert torch.equal(a, b)


def test_restore_budget_gives_back_what_a_partial_block_lost() -> None:
    # Unit 0 has 12 channels (one and a half blocks of 8): capping at 12 dropped 4 of the 16
    # that its two blocks stood for; the budget 40 comes back to the most significant unit.
    a = _restore_budget([12, 16, 8], 40, [12, 32, 32], [1, 1, 1], [0.2, 0.5, 0.3], 8)
    assert sum(a) == 40 and a == [12, 20, 8]
    a = _restore_budget([12, 24, 16], 40, [12, 32, 32], [4, 8, 8], [0.2, 0.5, 0.3], 8)
    assert sum(a) == 40 and a == [4, 24, 12]


def _learner(config: CompressConfig) -> StructureLearner:
    model, capacity, cost, units = _vgg()
    gates = UnitGates(model, units, capacity)
    return StructureLearner(gates, capacity, cost, config)


def test_per_batch_ema_is_eq7() -> None:
    f = torch.tensor([0.0, 1.0])
    update_saliency(f, torch.tensor([1.0, 0.0]), 0.98)
    torch.testing.assert_close(f, torch.tensor([0.02, 0.98]))
    learner = _learner(CompressConfig(target=Target("flops", 0.5)))
    before = [s.clone() for s in learner.saliency]
    for gate in learner.gates.gates:
        gate.grad = torch.ones_like(gate)
    learner.gates.entries = [1 for _ in learner.gates.gates]
    learner.after_backward()
    for old, new in zip(before, learner.saliency, strict=True):
        torch.testing.assert_close(new, 0.98 * old + 0.02 * torch.ones_like(old))
    assert all(g.grad is None for g in learner.gates.gates)


def _first_step(
    target_fit: str, cost_power: float = 1.0
) -> tuple[StructureLearner, Redistribution]:
    """Saliency concentrated in the first, full-resolution unit: redistribution moves
    channels there."""
    config = CompressConfig(
        target=Target("flops", 0.6), target_fit=target_fit, cost_power=cost_power
    )  # type: ignore[arg-type]
    learner = _learner(config)
    learner.saliency = [
        torch.full((c,), 1.0 if i == 0 else 0.05) for i, c in enumerate(learner.capacity)
    ]
    learner.finish_calibration()
    step = learner.redistribute()
    assert learner.active == step.allocation
    assert _reduction(learner.cost_model, step.allocation) >= 0.6 - 1e-9
    assert all(a >= f for a, f in zip(step.allocation, learner.floors, strict=True))
    return learner, step


def test_the_scale_fit_keeps_the_learned_moves_that_the_greedy_fit_reverts() -> None:
    _, ours = _first_step("scale")
    _, greedy = _first_step("greedy")
    assert ours.proposed == greedy.proposed and ours.learned_moves > 0
    assert ours.proposed[0] > ours.before[0]  # the learned move survives the fit
    assert ours.allocation[0] > ours.before[0]
    assert ours.reverted <= 1 < greedy.reverted
    # The greedy fit empties the expensive early units below where they started.
    assert greedy.allocation[1] < greedy.before[1] < ours.allocation[1]


def test_cost_aware_significance_favours_cheap_units() -> None:
    learner, step = _first_step("cost_aware")
    _, plain = _first_step("scale")
    # Per unit of cost, the late (1×1-resolution) units are cheap: they gain more.
    assert step.proposed[-1] > plain.proposed[-1]
    assert learner.floors == channel_floor(learner.capacity, 1, 1, 0.1)


def test_cost_power_tempers_the_pull_towards_cheap_units() -> None:
    _, plain = _first_step("scale")
    _, full = _first_step("cost_aware")
    _, tempered = _first_step("cost_aware", cost_power=0.5)
    assert plain.proposed[-1] < tempered.proposed[-1] < full.proposed[-1]
    with pytest.raises(ValueError, match="cost_power"):
        CompressConfig(target=Target("flops", 0.5), cost_power=-0.5)


def test_release_schedule() -> None:
    constant = _learner(CompressConfig(target=Target("flops", 0.5), release_schedule="constant"))
    assert [constant.release_at(e, 4) for e in (1, 2, 3, 4)] == [0.5] * 4
    cosine = _learner(CompressConfig(target=Target("flops", 0.5)))
    values = [cosine.release_at(e, 4) for e in (1, 2, 3, 4)]
    assert values == sorted(values, reverse=True) and values[0] < 0.5
    assert values[-1] == pytest.approx(0.0, abs=1e-12)
    # With nothing released, redistribution proposes the allocation it started from.
    cosine.finish_calibration()
    step = cosine.redistribute(0.0)
    assert step.proposed == step.before and step.learned_moves == 0


@pytest.mark.parametrize("rounding", ["per_unit", "pooled"])
def test_release_rounding_reaches_the_learner(rounding: str) -> None:
    """A release too small for any unit's ⌊s·a_l⌋ moves nothing per unit; pooled, the same
    release still moves channels towards the salient first unit."""
    learner = _learner(
        CompressConfig(target=Target("channels", 0.5), release_rounding=rounding)  # type: ignore[arg-type]
    )
    learner.saliency = [
        torch.full((c,), 1.0 if i == 0 else 0.05) for i, c in enumerate(learner.capacity)
    ]
    learner.finish_calibration()
    s = 0.99 / max(learner.active)
    step = learner.redistribute(s)
    if rounding == "per_unit":
        assert step.proposed == step.before
    else:
        assert step.proposed[0] > step.before[0]
        assert sum(step.proposed) == sum(step.before)
