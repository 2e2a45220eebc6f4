"""A network's pruning budget: its prunable units, their widths and the cost model, built the
same way for a compression run and for an upload's inspection; and from them the largest
reduction of each metric the per-unit floors allow, for every channel multiple a job may ask
for.

The inspection records those limits when a checkpoint is uploaded, so the API can refuse an
unreachable target when the job is submitted: the same test `require_reachable` makes in the
worker before any training, on the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from edgeprune.contracts.limits import MAX_CHANNEL_MULTIPLE, METRICS
from pruning.config import CompressConfig, Target
from pruning.network.cost import CostModel
from pruning.network.dependency import DependencyAdapter
from pruning.network.discovery import Discovery, discover_units
from pruning.network.units import PrunableModel, unit_widths
from pruning.structure.allocation import channel_floor, reachable_reduction


def select_units(model: nn.Module, example: Tensor, config: CompressConfig) -> Discovery:
    """The zoo's hand-written unit list where it applies, else the units discovered from the
    dependency graph (`pruning.network.discovery`)."""
    declared = (
        isinstance(model, PrunableModel)
        and config.unit_source == "auto"
        and config.residual == "inside"
        and not config.keep_layers
    )
    if declared and isinstance(model, PrunableModel):
        return Discovery(list(model.prunable_units()), [], declared=True)
    return discover_units(model, example, ignore=config.keep_layers, residual=config.residual)


@dataclass(frozen=True)
class NetworkBudget:
    discovery: Discovery
    capacity: list[int]
    adapter: DependencyAdapter
    cost_model: CostModel


def network_budget(model: nn.Module, example: Tensor, config: CompressConfig) -> NetworkBudget:
    """Units, widths, dependency adapter and cost model of `model` (put in eval mode: the
    cost model's forward pass must not touch BN statistics)."""
    discovery = select_units(model, example, config)
    capacity = unit_widths(model, discovery.units)
    model.eval()
    adapter = DependencyAdapter(model, example, discovery.units)
    cost_model = CostModel.build(model, example, adapter.couplings(), capacity)
    return NetworkBudget(discovery, capacity, adapter, cost_model)


def reduction_limits(model: nn.Module, input_shape: tuple[int, int, int]) -> dict[str, list[float]]:
    """For each metric, the largest reduction reachable with channel multiple 1, 2, ...,
    MAX_CHANNEL_MULTIPLE (list index = multiple − 1), under a REST job's floors and unit
    policy: every option a job cannot set at its default."""
    config = CompressConfig(target=Target("flops", 0.5))
    # No torch.no_grad(): the dependency graph traces through autograd.
    budget = network_budget(model, torch.zeros(1, *input_shape), config)
    limits: dict[str, list[float]] = {metric: [] for metric in METRICS}
    for multiple in range(1, MAX_CHANNEL_MULTIPLE + 1):
        floors = channel_floor(budget.capacity, config.min_channels, multiple, config.min_fraction)
        for metric in METRICS:
            limits[metric].append(
                reachable_reduction(budget.capacity, floors, budget.cost_model, metric)
            )
    return limits
