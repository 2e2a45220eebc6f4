"""Channel gates: a 0/1 tensor per unit that multiplies the unit's output channels.

The gate is a leaf tensor that requires grad but is never given to the optimiser: its
gradient is the Taylor criterion's numerator (see `saliency.taylor_criterion`), and setting
its entries to 0/1 masks channels exactly as removing them would.

Where the gate sits. ALGORITHM.md puts it on the tensor read by the layers whose input
channels shrink (the "consumers"). Multiplying that tensor costs one pass over a whole
feature map forward and two backward; multiplying the consumers' weights instead,
W' = W · g over input channels, computes the very same function of g, so ∂J/∂g is the same
number, for the cost of a weight-sized product. Gates are folded into the consumers' weights
that way whenever every consumer is a plain conv (groups = 1) or a linear layer; otherwise
(or with no consumer known) a forward hook multiplies the output of the unit's `gate_at`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.utils.hooks import RemovableHandle

from pruning.network.dependency import Reader, is_mixing
from pruning.network.units import UnitSpec
from pruning.structure.saliency import normalise_per_unit, taylor_criterion


class _FoldedGate(nn.Module):
    """Parametrization W ↦ W · g over W's input-channel dimension, g placed at the unit's
    positions in the reader's input (all of it, or the unit's slice of a concatenation)."""

    def __init__(self, gate: Tensor, positions: Sequence[int], fan_in: int):
        super().__init__()
        # A plain attribute, not a buffer: the gate is neither trained nor saved.
        self.gate_ref = [gate]
        self.repeat = len(positions) // gate.numel()
        whole = list(positions) == list(range(fan_in))
        self.positions = None if whole else torch.tensor(positions, device=gate.device)
        self.fan_in = fan_in

    def forward(self, weight: Tensor) -> Tensor:
        gate = self.gate_ref[0]
        if self.repeat > 1:  # a linear layer after flatten reads each channel `repeat` times
            gate = gate.repeat_interleave(self.repeat)
        if self.positions is not None:
            gate = weight.new_ones(self.fan_in).index_put((self.positions,), gate.to(weight.dtype))
        shape = (1, -1) + (1,) * (weight.dim() - 2)
        return weight * gate.view(shape)


def _foldable(module: nn.Module, reader: Reader, channels: int) -> bool:
    if not is_mixing(module) or len(reader.positions) % channels:
        return False
    return max(reader.positions) < _weight(module).shape[1]


def _weight(module: nn.Module) -> Tensor:
    weight = module.weight
    assert isinstance(weight, Tensor)
    return weight


@torch.no_grad()
def _feature_map_sizes(model: nn.Module, ends: list[nn.Module], example: Tensor) -> list[int]:
    """Elements per sample of each module's output, from one eval-mode forward pass."""
    sizes = [0 for _ in ends]
    handles = []
    for index, module in enumerate(ends):

        def record(_m: nn.Module, _i: object, out: Tensor, index: int = index) -> None:
            sizes[index] = out[0].numel()

        handles.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        model(example)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return sizes


class UnitGates:
    """Installs one gate per unit on `model`; remove() restores the plain model.

    consumers: for each unit, the layers that read its channels and where (from the dependency
    graph); None to gate every unit with a hook at `gate_at`. Units without a `gate_at`
    (found by `pruning.network.discovery`) are always folded into their readers.
    example: one input sample, to size the gated feature maps; with `batch_size`, a unit is
    folded only where its consumers' weights are smaller than a batch of its feature map.
    """

    def __init__(
        self,
        model: nn.Module,
        units: Sequence[UnitSpec],
        widths: Sequence[int],
        consumers: Sequence[Sequence[Reader]] | None = None,
        example: Tensor | None = None,
        batch_size: int | None = None,
    ):
        modules = dict(model.named_modules())
        hooked = all(u.gate_at is not None for u in units)
        map_sizes = (
            _feature_map_sizes(model, [modules[str(u.gate_at)] for u in units], example)
            if example is not None and batch_size is not None and hooked
            else None
        )
        device = next(model.parameters()).device
        dtype = next(model.parameters()).dtype
        self.units = list(units)
        self.gates: list[Tensor] = [
            torch.ones(width, device=device, dtype=dtype, requires_grad=True) for width in widths
        ]
        # M_l of eq. (5): entries per channel of the gated tensor in the latest forward pass.
        self.entries: list[int] = [0 for _ in self.units]
        self._handles: list[RemovableHandle] = []
        self._folded: list[nn.Module] = []
        for index, unit in enumerate(self.units):
            found = list(consumers[index]) if consumers else []
            readers = [modules[reader.module] for reader in found]
            cheaper = (
                map_sizes is None
                or batch_size is None
                or (sum(_weight(m).numel() for m in readers) < batch_size * map_sizes[index])
            )
            foldable = all(
                _foldable(m, r, widths[index]) for m, r in zip(readers, found, strict=True)
            )
            if readers and foldable and (cheaper or unit.gate_at is None):
                self._fold(index, readers, found)
                continue
            if unit.gate_at is None:
                raise ValueError(
                    f"unit {unit.name}: no layer that reads its channels can hold its gate"
                )
            try:
                target = modules[unit.gate_at]
            except KeyError:
                raise ValueError(f"unit {unit.name}: no module named {unit.gate_at!r}") from None
            self._handles.append(target.register_forward_hook(self._make_hook(index)))

    def _fold(self, index: int, readers: list[nn.Module], found: list[Reader]) -> None:
        for reader, where in zip(readers, found, strict=True):
            fan_in = _weight(reader).shape[1]  # conv (out, in, kh, kw) and linear (out, in)
            parametrize.register_parametrization(
                reader, "weight", _FoldedGate(self.gates[index], where.positions, fan_in)
            )
            self._folded.append(reader)
        repeat = len(found[0].positions) // self.gates[index].numel()
        self._handles.append(
            readers[0].register_forward_pre_hook(self._make_counter(index, repeat))
        )

    def _make_counter(self, index: int, repeat: int) -> Any:
        def count(_module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            # Entries per channel: N·H·W before a conv; N·r before a linear layer that reads
            # each channel r times (after a flatten).
            x = inputs[0]
            self.entries[index] = x.numel() // x.shape[1] * (repeat if x.dim() == 2 else 1)

        return count

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
            # A step whose fp16 gradients overflowed (the scaler skips it) adds nothing:
            # non-finite entries become 0 on the device, with no read-back.
            grad = torch.nan_to_num(gate.grad.float(), nan=0.0, posinf=0.0, neginf=0.0)
            scores.append(normalise_per_unit(taylor_criterion(grad, entries)))
        return scores

    def zero_grad(self) -> None:
        for gate in self.gates:
            gate.grad = None

    def remove(self) -> None:
        """Remove hooks and folded parametrizations, keeping the unmasked weights."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for reader in self._folded:
            if parametrize.is_parametrized(reader, "weight"):
                parametrize.remove_parametrizations(reader, "weight", leave_parametrized=False)
        self._folded.clear()
