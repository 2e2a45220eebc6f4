"""What the engine takes and gives: the task's inputs, the run's result, the removal error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from pruning.data.types import Inputs
from pruning.models.registry import ModelSpec


class PruningMismatch(RuntimeError):
    """The pruned network does not compute what the masked network computed."""


@dataclass
class TaskTensors:
    """What the engine needs of the data: normalised inputs on the CPU (tensors, or `Samples`
    read a batch at a time) and int64 labels."""

    x_train: Inputs
    y_train: Tensor
    x_test: Inputs
    y_test: Tensor
    # The data's kind decides the default augmentation; its padding is `augment_fill` per
    # channel (pruning.data.augmentation), 0 (the mean) when not given.
    kind: str = "images"
    augment_fill: Tensor | None = None


@dataclass
class EngineResult:
    model: nn.Module
    spec: ModelSpec
    units: list[dict[str, Any]]
    kept_convs: list[dict[str, str]]
    baseline: dict[str, float]
    pruned: dict[str, float]
    history: list[dict[str, Any]]
    timings: dict[str, float]
    self_check_max_abs_diff: float
    masked_model_metrics: dict[str, float] = field(default_factory=dict)
    # The largest reduction of the target's metric the per-unit floors allow.
    reachable: float = 1.0
    # Where and how it trained: the device (e.g. "cuda:0", "cpu") and the precision that
    # "auto" resolved to.
    runtime: dict[str, str] = field(default_factory=dict)
