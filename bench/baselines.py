"""The pruning baselines we compare against, both applied once to a pretrained network.

- PFEC (Li et al., ICLR 2017, "Pruning Filters for Efficient ConvNets"): every unit loses
  the same share of its filters, keeping those with the largest L1 norm.
- torch-pruning's Taylor importance (Molchanov et al., CVPR 2019) with global ranking: one
  threshold over every unit's channels, so layers end up with different widths.

Both prune exactly our units (ALGORITHM.md, 'Which units are prunable'), so that the
comparison is about which channels go, not about which layers may shrink.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
import torch_pruning as tp
from torch import Tensor, nn

from pruning.config import InvalidTarget, Target
from pruning.cpu_kernels import guard_cpu_kernels
from pruning.network.cost import CostModel
from pruning.network.dependency import DependencyAdapter
from pruning.network.metrics import count_model
from pruning.network.units import UnitSpec, unit_widths
from pruning.structure.allocation import (
    adjust_to_target,
    channel_floor,
    initial_allocation,
    top_channels,
)


class TargetMissed(RuntimeError):
    """No pruning ratio brought the network within the tolerance of the FLOPs target."""


def _units(model: nn.Module) -> list[UnitSpec]:
    units = getattr(model, "prunable_units", None)
    if units is None:
        raise TypeError(f"{type(model).__name__} does not declare prunable_units()")
    return list(units())


def l1_filter_norms(model: nn.Module, units: Sequence[UnitSpec]) -> list[Tensor]:
    """Per unit, the L1 norm of each output filter of its conv (PFEC's criterion)."""
    modules = dict(model.named_modules())
    norms = []
    for unit in units:
        weight = modules[unit.conv].weight
        assert isinstance(weight, Tensor)
        norms.append(weight.detach().abs().flatten(1).sum(1))
    return norms


def pfec_prune(
    model: nn.Module,
    example: Tensor,
    flops_reduction: float,
    *,
    min_channels: int = 1,
    tolerance: float = 0.005,
) -> list[int]:
    """Prune `model` in place at one uniform rate that meets the FLOPs target.

    The uniform rate is the engine's own step 0 (bisection on the exact cost model). Rounding
    each layer's width can overshoot the target by more than a point on narrow nets, so the
    allocation is topped up with the largest-norm filters until it is within `tolerance` (a
    few channels: still uniform to within rounding). Returns the kept widths per unit.
    """
    units = _units(model)
    capacity = unit_widths(model, units)
    was_training = model.training
    model.eval()
    adapter = DependencyAdapter(model, example, units)
    cost_model = CostModel.build(model, example, adapter.couplings(), capacity)
    target = Target("flops", flops_reduction)
    norms = l1_filter_norms(model, units)
    floors = channel_floor(capacity, min_channels)
    active = initial_allocation(capacity, target, cost_model, floors)
    active = adjust_to_target(active, norms, cost_model, target, floors=floors, tolerance=tolerance)
    adapter.remove_channels([top_channels(n, a) for n, a in zip(norms, active, strict=True)])
    model.train(was_training)
    return active


@dataclass(frozen=True)
class TaylorOutcome:
    model: nn.Module
    pruning_ratio: float  # torch-pruning's global channel ratio that met the target
    flops_reduction: float
    trials: int


def _ignored_names(model: nn.Module, example: Tensor) -> set[str]:
    """Every conv/linear whose output channels do not belong to one of our units.

    A torch-pruning group is skipped when any member whose outputs it would shrink is
    ignored, so ignoring these (and not, say, MobileNet's depthwise convs, which follow a
    unit) leaves exactly our units prunable: the classifier, ResNet's residual-coupled
    convs and anything outside the unit policy stay whole.
    """
    adapter = DependencyAdapter(model, example, _units(model))
    follows_unit = {c.module for c in adapter.couplings() if c.dim == "out"}
    return {
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear) and name not in follows_unit
    }


def taylor_gradients(model: nn.Module, batches: Sequence[tuple[Tensor, Tensor]]) -> None:
    """Accumulate the mean loss gradient over `batches` into `.grad` (no weight update)."""
    model.train()
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    with guard_cpu_kernels(model, device):
        for xb, yb in batches:
            (F.cross_entropy(model(xb), yb) / len(batches)).backward()


class _TaylorKeepingOne(tp.importance.TaylorImportance):
    """torch-pruning's Taylor importance, except that each group's best channel never goes.

    A global threshold can fall above every channel of a unit; torch-pruning then refuses to
    prune that group *at all*, so the FLOPs reduction stops growing with the ratio and high
    targets become unreachable. Our engine keeps `min_channels` = 1 per unit; this does the
    same for the baseline.
    """

    def __call__(self, group: tp.Group) -> Tensor | None:
        scores = super().__call__(group)
        if scores is not None and scores.numel() > 0:
            scores = scores.clone()
            scores[int(torch.argmax(scores))] = float("inf")
        return scores


def _prune_copy(
    scored: nn.Module, example: Tensor, ratio: float, ignored_names: set[str]
) -> nn.Module:
    candidate = copy.deepcopy(scored)
    # deepcopy drops .grad, and the Taylor score is weight × gradient.
    for (_, new), (_, old) in zip(
        candidate.named_parameters(), scored.named_parameters(), strict=True
    ):
        new.grad = None if old.grad is None else old.grad.clone()
    ignored = [m for n, m in candidate.named_modules() if n in ignored_names]
    candidate.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MetaPruner(
            candidate,
            example,
            importance=_TaylorKeepingOne(),
            global_pruning=True,
            pruning_ratio=ratio,
            ignored_layers=ignored,
        )
        pruner.step()
    candidate.zero_grad(set_to_none=True)
    return candidate


def taylor_prune(
    model: nn.Module,
    example: Tensor,
    batches: Sequence[tuple[Tensor, Tensor]],
    flops_reduction: float,
    *,
    tolerance: float = 0.01,
    max_trials: int = 16,
) -> TaylorOutcome:
    """A pruned copy of `model` whose FLOPs reduction is within `tolerance` of the target.

    torch-pruning's knob is a global *channel* ratio, not FLOPs, so the ratio is bisected
    (the reduction grows with it) on copies of the scored model, counting each candidate.
    """
    if not 0.0 < flops_reduction < 1.0:
        raise InvalidTarget(f"FLOPs reduction must be in (0, 1), got {flops_reduction}")
    input_shape = tuple(example.shape[1:])
    assert len(input_shape) == 3
    full = count_model(model, input_shape).flops
    scored = copy.deepcopy(model)
    ignored_names = _ignored_names(scored, example)
    taylor_gradients(scored, batches)

    low, high = 0.0, 1.0
    best: tuple[float, float, float, nn.Module] | None = None  # |miss|, ratio, achieved, model
    for trial in range(1, max_trials + 1):
        ratio = (low + high) / 2
        candidate = _prune_copy(scored, example, ratio, ignored_names)
        achieved = 1.0 - count_model(candidate, input_shape).flops / full
        miss = abs(achieved - flops_reduction)
        if best is None or miss < best[0]:
            best = (miss, ratio, achieved, candidate)
        # Prefer landing at or just past the target, like the engine's own runs; a hair
        # below is accepted too, since one channel of an early layer can be a point of FLOPs.
        if flops_reduction - tolerance / 4 <= achieved <= flops_reduction + tolerance:
            return TaylorOutcome(candidate, ratio, achieved, trial)
        if achieved < flops_reduction:
            low = ratio
        else:
            high = ratio
    assert best is not None
    miss, ratio, achieved, candidate = best
    if miss > tolerance:
        raise TargetMissed(
            f"torch-pruning Taylor: the closest FLOPs reduction found, {achieved:.3f}, misses "
            f"the target {flops_reduction} by more than {tolerance}"
        )
    return TaylorOutcome(candidate, ratio, achieved, max_trials)


def calibration_batches(
    x: Tensor, y: Tensor, batch_size: int, count: int, seed: int
) -> list[tuple[Tensor, Tensor]]:
    """`count` shuffled batches of the training data, the same for a given seed."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    picks = [order[i : i + batch_size] for i in range(0, len(x), batch_size)][:count]
    return [(x[idx], y[idx]) for idx in picks]
