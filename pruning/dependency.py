"""The one place that talks to torch-pruning: which tensors a unit's channels touch, and the
physical removal of channels (ALGORITHM.md step 3)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch_pruning as tp
from torch import Tensor, nn

from pruning.units import UnitSpec

Dim = Literal["in", "out"]


@dataclass(frozen=True)
class Coupling:
    """`module`'s `dim` (input or output channels) shrinks with unit `unit`."""

    module: str
    dim: Dim
    unit: int


class DependencyAdapter:
    """Builds torch-pruning's dependency graph once for a model and its units."""

    def __init__(self, model: nn.Module, example_input: Tensor, units: Sequence[UnitSpec]):
        self.model = model
        self.units = list(units)
        self._names = {module: name for name, module in model.named_modules()}
        modules = dict(model.named_modules())
        self._convs = [modules[unit.conv] for unit in self.units]
        self._couplings: list[Coupling] | None = None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.graph = tp.DependencyGraph().build_dependency(
                model, example_inputs=example_input, verbose=False
            )

    def _group(self, index: int, idxs: Sequence[int]) -> tp.Group:
        conv = self._convs[index]
        fn = (
            tp.prune_conv_out_channels
            if isinstance(conv, nn.Conv2d)
            else tp.prune_linear_out_channels
        )
        return self.graph.get_pruning_group(conv, fn, idxs=list(idxs))

    def couplings(self) -> list[Coupling]:
        """Every (module, dim) whose size follows a unit, found from the dependency graph
        (computed once: the cost model and the gates both ask)."""
        if self._couplings is None:
            self._couplings = self._find_couplings()
        return self._couplings

    def _find_couplings(self) -> list[Coupling]:
        found: dict[tuple[str, Dim], int] = {}
        for index in range(len(self.units)):
            for dep, _ in self._group(index, [0]):
                module = dep.target.module
                name = self._names.get(module)
                if name is None or not isinstance(module, nn.Conv2d | nn.Linear | nn.BatchNorm2d):
                    continue
                dim: Dim = "out" if self.graph.is_out_channel_pruning_fn(dep.handler) else "in"
                key = (name, dim)
                if key in found and found[key] != index:
                    raise ValueError(
                        f"{name} ({dim}) is coupled to units {self.units[found[key]].name} and "
                        f"{self.units[index].name}: such channels must be pruned as one unit"
                    )
                found[key] = index
        return [Coupling(module=m, dim=d, unit=u) for (m, d), u in found.items()]

    def consumers(self) -> list[list[str]]:
        """Per unit, the layers that read its channels: the plain convs and linear layers
        whose input channels shrink with it (depthwise convs belong to the unit itself)."""
        modules = dict(self.model.named_modules())
        readers: list[list[str]] = [[] for _ in self.units]
        for coupling in self.couplings():
            module = modules[coupling.module]
            if coupling.dim != "in" or isinstance(module, nn.BatchNorm2d):
                continue
            if isinstance(module, nn.Conv2d) and module.groups > 1:
                continue
            readers[coupling.unit].append(coupling.module)
        return readers

    def remove_channels(self, masks: Sequence[Tensor]) -> None:
        """Physically remove every channel whose mask is False, unit by unit."""
        for index, mask in enumerate(masks):
            drop = torch.nonzero(~mask.cpu(), as_tuple=False).flatten().tolist()
            if not drop:
                continue
            if len(drop) == mask.numel():
                raise ValueError(f"unit {self.units[index].name} would lose every channel")
            group = self._group(index, drop)
            group.prune()
