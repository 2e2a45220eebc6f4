"""Structure learning state: saliency per channel, active counts and masks per unit
(ALGORITHM.md steps 0-2), independent of how the training loop is driven."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from pruning.allocation import adjust_to_target, initial_allocation, top_channels
from pruning.config import CompressConfig
from pruning.cost import CostModel
from pruning.gates import UnitGates
from pruning.redistribution import layer_significance, redistribute
from pruning.saliency import update_saliency


class StructureLearner:
    def __init__(
        self,
        gates: UnitGates,
        capacity: Sequence[int],
        cost_model: CostModel,
        config: CompressConfig,
    ):
        self.gates = gates
        self.capacity = list(capacity)
        self.cost_model = cost_model
        self.config = config
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
        self.active = initial_allocation(
            self.capacity,
            self.config.target,
            self.cost_model,
            self.config.min_channels,
            self.config.channel_multiple,
        )
        self._meet_target()

    # -- step 1: every mini-batch ---------------------------------------------------------
    def after_backward(self) -> None:
        for f, theta_hat in zip(self.saliency, self.gates.normalised_scores(), strict=True):
            update_saliency(f, theta_hat, self.config.epsilon)
        self.gates.zero_grad()

    # -- step 2: end of every epoch -------------------------------------------------------
    def redistribute(self) -> None:
        xi = layer_significance([f.tolist() for f in self.saliency], self.active)
        m = self.config.channel_multiple
        # Redistribution moves whole blocks of `m` channels (single channels when m = 1).
        blocks = [-(-a // m) for a in self.active]
        block_capacity = [-(-c // m) for c in self.capacity]
        blocks = redistribute(
            blocks,
            block_capacity,
            xi,
            release=self.config.release,
            min_channels=-(-self.config.min_channels // m),
        )
        self.active = [min(c, m * b) for c, b in zip(self.capacity, blocks, strict=True)]
        self._meet_target()

    def _meet_target(self) -> None:
        self.active = adjust_to_target(
            self.active,
            self.saliency,
            self.cost_model,
            self.config.target,
            min_channels=self.config.min_channels,
            tolerance=self.config.tolerance,
            multiple=self.config.channel_multiple,
        )
        self._apply_masks()

    def _apply_masks(self) -> None:
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
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self.gates.gates[0].device
        self.saliency = [f.to(device) for f in state["saliency"]]
        self.active = [int(a) for a in state["active"]]
        self._apply_masks()
