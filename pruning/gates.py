"""Channel gates: a mask tensor per unit, applied by a forward hook at the end of the unit.

The gate is a leaf tensor that requires grad but is never given to the optimiser: its
gradient is the Taylor criterion's numerator (see `saliency.taylor_criterion`), and setting
its entries to 0/1 masks channels exactly as removing them would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

from pruning.saliency import normalise_per_unit, taylor_criterion
from pruning.units import UnitSpec


class UnitGates:
    """Installs one gate per unit on `model`; remove() restores the plain model."""

    def __init__(self, model: nn.Module, units: Sequence[UnitSpec], widths: Sequence[int]):
        modules = dict(model.named_modules())
        device = next(model.parameters()).device
        self.units = list(units)
        self.gates: list[Tensor] = [
            torch.ones(width, device=device, requires_grad=True) for width in widths
        ]
        # M_l = N·H·W of the gated tensor in the latest forward pass (eq. 5's 1/M).
        self.entries: list[int] = [0 for _ in self.units]
        self._handles: list[RemovableHandle] = []
        for index, unit in enumerate(self.units):
            try:
                target = modules[unit.gate_at]
            except KeyError:
                raise ValueError(f"unit {unit.name}: no module named {unit.gate_at!r}") from None
            self._handles.append(target.register_forward_hook(self._make_hook(index)))

    def _make_hook(self, index: int) -> Any:
        def hook(_module: nn.Module, _inputs: Any, output: Tensor) -> Tensor:
            gate = self.gates[index]
            if output.dim() < 2 or output.shape[1] != gate.numel():
                raise RuntimeError(
                    f"gate of unit {self.units[index].name} has {gate.numel()} channels but "
                    f"{self.units[index].gate_at} produced shape {tuple(output.shape)}"
                )
            self.entries[index] = output.numel() // output.shape[1]
            shape = (1, -1) + (1,) * (output.dim() - 2)
            return output * gate.view(shape)

        return hook

    def set_masks(self, masks: Sequence[Tensor]) -> None:
        with torch.no_grad():
            for gate, mask in zip(self.gates, masks, strict=True):
                gate.copy_(mask.to(gate.dtype))

    def masks(self) -> list[Tensor]:
        return [gate.detach() > 0.5 for gate in self.gates]

    def normalised_scores(self) -> list[Tensor]:
        """Eq. (5) then eq. (6) for every unit, from the gates' gradients of the last backward."""
        scores = []
        for gate, entries in zip(self.gates, self.entries, strict=True):
            if gate.grad is None or entries == 0:
                scores.append(torch.zeros_like(gate.detach()))
                continue
            scores.append(normalise_per_unit(taylor_criterion(gate.grad, entries)))
        return scores

    def zero_grad(self) -> None:
        for gate in self.gates:
            gate.grad = None

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
