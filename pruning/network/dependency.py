"""The one place that talks to torch-pruning: which tensors a unit's channels touch, and the
physical removal of channels (ALGORITHM.md step 3)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch_pruning as tp
from torch import Tensor, nn

from pruning.network.units import UnitSpec

Dim = Literal["in", "out"]


@dataclass(frozen=True)
class Coupling:
    """`channels` of `module`'s `dim` (input or output channels) shrink with unit `unit`: all
    of them, or the unit's share of a concatenation."""

    module: str
    dim: Dim
    unit: int
    channels: int


@dataclass(frozen=True)
class Reader:
    """A layer that mixes a unit's channels (a conv with groups = 1, or a linear layer), and
    where they sit in its input: unit channel c occupies input positions
    `positions[c·r:(c+1)·r]`, r = len(positions) / width (r > 1 after a flatten)."""

    module: str
    positions: tuple[int, ...]


def build_graph(model: nn.Module, example_input: Tensor) -> tp.DependencyGraph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tp.DependencyGraph().build_dependency(
            model, example_inputs=example_input, verbose=False
        )


def out_channel_group(graph: tp.DependencyGraph, module: nn.Module, idxs: Sequence[int]) -> Any:
    fn = (
        tp.prune_conv_out_channels
        if isinstance(module, nn.Conv2d)
        else tp.prune_linear_out_channels
    )
    return graph.get_pruning_group(module, fn, idxs=list(idxs))


def is_mixing(module: nn.Module) -> bool:
    """Layers whose every output reads every input channel: eq. (5)'s gate folds into them."""
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)


def is_depthwise(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Conv2d)
        and module.groups > 1
        and module.groups == module.in_channels == module.out_channels
    )


class DependencyAdapter:
    """Builds torch-pruning's dependency graph once for a model and its units."""

    def __init__(self, model: nn.Module, example_input: Tensor, units: Sequence[UnitSpec]):
        self.model = model
        self.units = list(units)
        self._names = {module: name for name, module in model.named_modules()}
        modules = dict(model.named_modules())
        self._convs = [modules[unit.conv] for unit in self.units]
        self._couplings: list[Coupling] | None = None
        self._readers: list[list[Reader]] | None = None
        self.graph = build_graph(model, example_input)

    def _group(self, index: int, idxs: Sequence[int]) -> Any:
        return out_channel_group(self.graph, self._convs[index], idxs)

    def couplings(self) -> list[Coupling]:
        """Every (module, dim) whose size follows a unit, found from the dependency graph
        (computed once: the cost model and the gates both ask)."""
        if self._couplings is None:
            self._couplings, self._readers = self._trace()
        return self._couplings

    def _trace(self) -> tuple[list[Coupling], list[list[Reader]]]:
        claimed: dict[tuple[str, Dim], dict[int, int]] = {}
        couplings: list[Coupling] = []
        readers: list[list[Reader]] = [[] for _ in self.units]
        for index, conv in enumerate(self._convs):
            width = conv.out_channels if isinstance(conv, nn.Conv2d) else conv.out_features
            for dep, idxs in self._group(index, range(width)):
                module = dep.target.module
                name = self._names.get(module)
                if name is None or not isinstance(module, nn.Conv2d | nn.Linear | nn.BatchNorm2d):
                    continue
                dim: Dim = "out" if self.graph.is_out_channel_pruning_fn(dep.handler) else "in"
                owners = claimed.setdefault((name, dim), {})
                clash = {owners[i] for i in idxs if i in owners and owners[i] != index}
                if clash:
                    other = self.units[clash.pop()].name
                    raise ValueError(
                        f"{name} ({dim}) is coupled to units {other} and "
                        f"{self.units[index].name}: such channels must be pruned as one unit"
                    )
                if any(i in owners for i in idxs):
                    continue  # the same layer reached twice within one unit's group
                owners.update(dict.fromkeys(idxs, index))
                couplings.append(Coupling(name, dim, index, len(idxs)))
                if dim == "in" and is_mixing(module):
                    readers[index].append(Reader(name, tuple(int(i) for i in idxs)))
        return couplings, readers

    def consumers(self) -> list[list[Reader]]:
        """Per unit, the layers that read its channels: the plain convs and linear layers
        whose input channels shrink with it (depthwise convs belong to the unit itself)."""
        self.couplings()
        assert self._readers is not None
        return self._readers

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
