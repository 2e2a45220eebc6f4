"""Structure learning state: saliency per channel, active counts and masks per unit
(ALGORITHM.md steps 0-2), independent of how the training loop is driven."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pruning.config import CompressConfig
from pruning.network.cost import CostModel
from pruning.structure.allocation import (
    adjust_to_target,
    channel_floor,
    initial_allocation,
    scale_to_target,
    stable_channels,
    top_channels,
)
from pruning.structure.gates import UnitGates
from pruning.structure.redistribution import layer_significance, redistribute
from pruning.structure.saliency import update_saliency


@dataclass(frozen=True)
class Redistribution:
    """One end-of-epoch step: what Algorithm 1 proposed and what the target fit kept.

    learned_moves: channels redistribution moved (Σ|proposed − before| / 2);
    fit_moved: channels the target fit changed (Σ|allocation − proposed|);
    reverted: the part of the learned moves that the fit took straight back (see below).
    """

    before: list[int]
    proposed: list[int]
    allocation: list[int]

    @property
    def learned_moves(self) -> int:
        return sum(abs(p - b) for p, b in zip(self.proposed, self.before, strict=True)) // 2

    @property
    def fit_moved(self) -> int:
        return sum(abs(a - p) for a, p in zip(self.allocation, self.proposed, strict=True))

    @property
    def reverted(self) -> int:
        """Channels of the learned moves that the fit undid, beyond a common scale: each unit's
        share of the total is compared, so scaling every width alike reverts nothing."""
        total_b, total_p, total_a = sum(self.before), sum(self.proposed), sum(self.allocation)
        if min(total_b, total_p, total_a) == 0:
            return 0
        undone = 0.0
        for b, p, a in zip(self.before, self.proposed, self.allocation, strict=True):
            learned = p / total_p - b / total_b
            fitted = a / total_a - p / total_p
            if learned * fitted < 0:
                undone += min(abs(learned), abs(fitted))
        return round(undone * total_a)


class StructureLearner:
    def __init__(
        self,
        gates: UnitGates,
        capacity: Sequence[int],
        cost_model: CostModel,
        config: CompressConfig,
        floors: Sequence[int] | None = None,
    ):
        """`floors`: each unit's fewest channels, when the caller already computed them from
        the same config (the engine checks the target against them before calibration)."""
        self.gates = gates
        self.capacity = list(capacity)
        self.cost_model = cost_model
        self.config = config
        self.floors = (
            list(floors)
            if floors is not None
            else channel_floor(
                capacity, config.min_channels, config.channel_multiple, config.min_fraction
            )
        )
        device = gates.gates[0].device
        self.saliency: list[Tensor] = [torch.zeros(c, device=device) for c in capacity]
        self.active: list[int] = list(capacity)
        self._calibration_sum: list[Tensor] | None = None
        self._calibration_batches = 0

    # -- calibration: every channel active, gradients only --------------------------------
    def accumulate_calibration(self) -> None:
        scores = self.gates.normalised_scores()
        if self._calibration_sum is None:
            self._calibration_sum = [s.clone() for s in scores]
        else:
            for total, s in zip(self._calibration_sum, scores, strict=True):
                total.add_(s)
        self._calibration_batches += 1
        self.gates.zero_grad()

    def finish_calibration(self) -> None:
        """f := mean calibration score; then the initial allocation and masks (step 0)."""
        if self._calibration_sum is not None:
            self.saliency = [s / self._calibration_batches for s in self._calibration_sum]
        uniform = initial_allocation(
            self.capacity,
            self.config.target,
            self.cost_model,
            self.floors,
            self.config.channel_multiple,
        )
        self.active = self._correct(uniform, reference=list(self.capacity))
        self._apply_masks()

    # -- step 1: every mini-batch ---------------------------------------------------------
    def after_backward(self) -> None:
        for f, theta_hat in zip(self.saliency, self.gates.normalised_scores(), strict=True):
            update_saliency(f, theta_hat, self.config.epsilon)
        self.gates.zero_grad()

    # -- step 2: end of every epoch -------------------------------------------------------
    def release_at(self, epoch: int, epochs: int) -> float:
        """The share s released at the end of structure epoch `epoch` (1-based) of `epochs`."""
        if self.config.release_schedule == "cosine":
            return self.config.release * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
        return self.config.release

    def redistribute(self, release: float | None = None) -> Redistribution:
        """Algorithm 1, then the fit to the target; returns both for the report."""
        release = self.config.release if release is None else release
        before = list(self.active)
        xi = layer_significance([f.tolist() for f in self.saliency], before)
        if self.config.target_fit == "cost_aware" and self.config.target.metric != "channels":
            xi = self._per_unit_of_cost(xi)
        proposed = self._regrow(xi, release)
        self.active = self._fit(proposed)
        self._apply_masks(stable=self.config.selection == "stable")
        return Redistribution(before=before, proposed=proposed, allocation=list(self.active))

    def _regrow(self, xi: list[float], release: float) -> list[int]:
        """Release and regrow in blocks of `channel_multiple` (single channels when 1)."""
        m = self.config.channel_multiple
        blocks = [-(-a // m) for a in self.active]
        block_capacity = [-(-c // m) for c in self.capacity]
        block_floors = [-(-f // m) for f in self.floors]
        blocks = redistribute(
            blocks,
            block_capacity,
            xi,
            release=release,
            min_channels=block_floors,
            pooled=self.config.release_rounding == "pooled",
        )
        proposed = [min(c, m * b) for c, b in zip(self.capacity, blocks, strict=True)]
        # A unit whose width is not a multiple of m holds a partial last block: capping it at
        # C_l loses channels. Give them back (or take the surplus) by significance, so the
        # channel budget Σ a_l holds exactly as Algorithm 1 says.
        return _restore_budget(proposed, sum(self.active), self.capacity, self.floors, xi, m)

    def _per_unit_of_cost(self, xi: list[float]) -> list[float]:
        """Eq. (8) made cost-aware: significance per unit of the cost one more channel adds
        to each unit at the current allocation."""
        metric = self.config.target.metric
        a = np.asarray(self.active, dtype=np.float64)
        rows = np.tile(a, (len(a), 1))
        rows[np.arange(len(a)), np.arange(len(a))] += 1
        marginal = self.cost_model.costs(rows, metric) - self.cost_model.cost(a, metric)
        power = self.config.cost_power
        scores = [x / max(float(c), 1e-12) ** power for x, c in zip(xi, marginal, strict=True)]
        total = sum(scores)
        return [s / total for s in scores] if total > 0 else xi

    def _fit(self, proposed: list[int]) -> list[int]:
        """Meet a FLOPs/params target (the channel budget needs nothing: Σ a_l is kept)."""
        target = self.config.target
        if target.metric == "channels":
            return proposed
        if self.config.target_fit == "greedy":
            return self._correct(proposed, reference=None)
        scaled = scale_to_target(
            proposed,
            self.cost_model,
            target,
            floors=self.floors,
            multiple=self.config.channel_multiple,
        )
        return self._correct(scaled, reference=proposed)

    def _correct(self, active: list[int], reference: list[int] | None) -> list[int]:
        """The exact greedy correction onto the target (a few channels after a scale fit),
        keeping the shape of `reference` unless the config asks for saliency per cost."""
        if self.config.correction == "saliency":
            reference = None
        return adjust_to_target(
            active,
            self.saliency,
            self.cost_model,
            self.config.target,
            floors=self.floors,
            tolerance=self.config.tolerance,
            multiple=self.config.channel_multiple,
            reference=reference,
        )

    def _apply_masks(self, stable: bool = False) -> None:
        if stable:
            current = self.gates.masks()
            masks = [
                stable_channels(f, m, a)
                for f, m, a in zip(self.saliency, current, self.active, strict=True)
            ]
        else:
            masks = [top_channels(f, a) for f, a in zip(self.saliency, self.active, strict=True)]
        self.gates.set_masks(masks)

    def masks(self) -> list[Tensor]:
        return self.gates.masks()

    def cost(self, metric: str) -> float:
        return self.cost_model.cost(self.active, metric)

    # -- resume -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "saliency": [f.detach().cpu() for f in self.saliency],
            "active": list(self.active),
            # With stable selection the masks depend on their history, not only on f.
            "masks": [m.detach().cpu() for m in self.gates.masks()],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self.gates.gates[0].device
        self.saliency = [f.to(device) for f in state["saliency"]]
        self.active = [int(a) for a in state["active"]]
        if "masks" in state:
            self.gates.set_masks([m.to(device) for m in state["masks"]])
        else:  # a checkpoint from before masks were saved
            self._apply_masks()


def _restore_budget(
    proposed: list[int],
    budget: int,
    capacity: Sequence[int],
    floors: Sequence[int],
    significance: Sequence[float],
    multiple: int,
) -> list[int]:
    """Move whole blocks (or what is left of one) until Σ a_l == budget: add to the most
    significant units with room, take from the least significant above their floors."""
    a = list(proposed)
    by_significance = sorted(range(len(a)), key=lambda i: (-significance[i], i))
    for i in by_significance:
        while sum(a) < budget and a[i] < capacity[i]:
            a[i] += min(multiple, capacity[i] - a[i], budget - sum(a))
    for i in reversed(by_significance):
        while sum(a) > budget and a[i] > floors[i]:
            a[i] -= min(multiple, a[i] - floors[i], sum(a) - budget)
    return a
