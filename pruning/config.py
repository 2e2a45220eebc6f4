"""Configuration and the small contracts between the engine and whoever drives it.

The engine never reads the environment: the CLI and the Celery worker build a
`CompressConfig` and hand it in, together with optional `RunHooks`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from edgeprune.contracts.jobs import Phase
from edgeprune.contracts.limits import (
    DEFAULT_DISTILL_PHASES,
    MAX_BATCH_SIZE,
    MAX_CHANNEL_MULTIPLE,
    MAX_EPOCHS,
    METRICS,
    REDUCTION_ABOVE,
    REDUCTION_BELOW,
    DistillPhases,
    Metric,
    Precision,
    Quantize,
    TargetFitChoice,
)

# The fits a job may choose, and the former greedy fit kept for the benchmark's comparison.
TargetFit = Literal[TargetFitChoice, "greedy"]
ReleaseSchedule = Literal["constant", "cosine"]
ReleaseRounding = Literal["per_unit", "pooled"]
FinetuneSchedule = Literal["step", "cosine"]
UnitSource = Literal["auto", "discovered"]
Correction = Literal["proportional", "saliency"]
ChannelSelection = Literal["saliency", "stable"]
ResidualPolicy = Literal["inside", "coupled"]


class InvalidTarget(ValueError):
    """The requested compression target is malformed or cannot be reached."""


class Cancelled(Exception):
    """Raised inside the engine when the run's cancel check answers True."""


@dataclass(frozen=True)
class Target:
    metric: Metric
    reduction: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InvalidTarget(
                f"unknown target metric {self.metric!r}; use flops, params or channels"
            )
        if not isinstance(self.reduction, int | float) or math.isnan(self.reduction):
            raise InvalidTarget(f"target reduction must be a number, got {self.reduction!r}")
        if not REDUCTION_ABOVE < float(self.reduction) < REDUCTION_BELOW:
            raise InvalidTarget(f"target reduction must be in (0, 1), got {self.reduction}")

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parse 'flops=0.5' (also params=, channels=)."""
        metric, sep, value = text.partition("=")
        if not sep:
            raise InvalidTarget(
                f"target {text!r} must look like flops=0.5, params=0.5 or channels=0.5"
            )
        try:
            reduction = float(value)
        except ValueError:
            raise InvalidTarget(f"target reduction {value!r} is not a number") from None
        return cls(metric=metric.strip(), reduction=reduction)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CompressConfig:
    """Every hyperparameter of one compression run (ALGORITHM.md, 'Hyperparameters')."""

    target: Target
    structure_epochs: int = 10
    finetune_epochs: int = 10
    batch_size: int = 64
    # Structure learning keeps training the pretrained weights: a modest lr.
    structure_lr: float = 0.01
    # Weight learning of the compact net from pretrained weights (the paper's 0.1 is from scratch).
    lr: float = 0.01
    # Weight learning's lr schedule: "step" (÷10 at 1/3 and 2/3, the paper's) or "cosine".
    finetune_schedule: FinetuneSchedule = "step"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epsilon: float = 0.98  # eq. (7) saliency smoothing
    release: float = 0.5  # s: share of active channels re-allocated per redistribution
    # "cosine": s·(1 + cos(π·e/E))/2 at the end of epoch e of E, as sparse momentum decays
    # its rate, so the last redistribution changes nothing and the structure that is removed
    # is the one that trained (better in 3 of 4 cells of bench/RESULTS.md's photos section);
    # "constant": s every epoch, as the paper states it.
    release_schedule: ReleaseSchedule = "cosine"
    # "per_unit": ⌊s·a_l⌋ from each unit (Algorithm 1); "pooled": ⌊s·Σa_l⌋ in all, shared by
    # largest remainder, so units narrower than 1/s still release channels (measured in
    # docs/algorithm.md).
    release_rounding: ReleaseRounding = "per_unit"
    calibration_batches: int = 50
    min_channels: int = 1
    # Every unit keeps at least this fraction of its channels, so that fitting a FLOPs or
    # params target never starves a wide full-resolution unit (see docs/algorithm.md).
    min_fraction: float = 0.1
    # How redistribution's proposal is brought onto a FLOPs/params target:
    # "scale" — one common factor on the learned widths, then an exact few-channel correction;
    # "cost_aware" — eq. (8) significance per unit of cost, then the same scale fit;
    # "greedy" — the former per-channel saliency-per-cost greedy (kept for comparison).
    target_fit: TargetFit = "scale"
    # With "cost_aware": ξ_l is divided by the marginal cost to this power. 1 = per unit of
    # cost; below 1 tempers the pull towards cheap units (0 would be the scale fit's ξ).
    cost_power: float = 1.0
    # The last few channels onto the target: "proportional" keeps the shape of the widths
    # being fitted (uniform at the start, the learned proposal afterwards); "saliency" adds
    # and removes by saliency per unit of cost, which tilts small nets towards cheap units.
    correction: Correction = "proportional"
    # Which channels a unit keeps after each redistribution: "stable" = the channels it had,
    # adding its most salient masked ones when it grows and dropping its least salient
    # active ones when it shrinks; "saliency" = its a_l most salient (the paper's wording),
    # which swaps trained channels for untrained ones on noisy scores (docs/algorithm.md).
    selection: ChannelSelection = "stable"
    # Weight learning also follows the given checkpoint's softened outputs (pruning.
    # distillation): the share of the loss on the teacher's term (0 = labels only, the
    # paper's) and the softmax temperature. Only with a checkpoint: a network trained from
    # scratch has no teacher.
    distill: float = 0.0
    distill_temperature: float = 4.0
    distill_phases: DistillPhases = DEFAULT_DISTILL_PHASES
    # Keep every unit's width a multiple of this (1 = per channel, as in the paper). CPUs and
    # GPUs run convs fastest when channel counts fill their SIMD blocks (8 or 16): see
    # bench/RESULTS.md. With a multiple > 1 the target is met to within one block's cost.
    channel_multiple: int = 1
    # Which channels are prunable (docs/custom-models.md): "auto" takes a zoo model's own
    # unit list and discovers the units of any other network; "discovered" always discovers.
    unit_source: UnitSource = "auto"
    # Residual-tied channels: "inside" keeps them (the paper's policy: only channels inside a
    # block are pruned); "coupled" prunes each set of tied channels as one unit.
    residual: ResidualPolicy = "inside"
    # Module paths (and everything below them) whose output channels are never pruned.
    keep_layers: tuple[str, ...] = ()
    # INT8 (pruning.export.quantize): "int8" also publishes model.int8.onnx, unless its
    # test accuracy is more than `int8_max_drop` below the fp32 model's (then fp32 only, and
    # the report says why).
    quantize: Quantize = "none"
    int8_max_drop: float = 0.01
    int8_calibration_samples: int = 256
    tolerance: float = 0.005  # allowed undershoot of the target reduction (cost model units)
    # Shift-and-mirror: None = by the kind of data (pruning.data.augmentation: on for images,
    # off for digits and float arrays).
    augment: bool | None = None
    seed: int = 0
    device: str = "auto"  # "auto" = cuda when available, else cpu
    # Training arithmetic (pruning.precision): "auto" = bf16 autocast on CUDA that has it,
    # fp16 with a gradient scaler on CUDA that does not, fp32 on the CPU.
    precision: Precision = "auto"
    max_eval_batches: int | None = None
    # Worker processes that decode image files (or convert 8-bit arrays) ahead of the
    # device: None = 0 on a CPU, where decoding would share the training cores, and
    # min(8, cores − 1) on a GPU. In-memory float data never uses workers.
    data_workers: int | None = None

    def __post_init__(self) -> None:
        for name in ("structure_epochs", "finetune_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 <= value <= MAX_EPOCHS:
                raise ValueError(f"{name} must be an integer in [0, {MAX_EPOCHS}], got {value!r}")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be in [1, {MAX_BATCH_SIZE}], got {self.batch_size}")
        if not 0.0 < self.epsilon < 1.0:
            raise ValueError(f"epsilon must be in (0, 1), got {self.epsilon}")
        if not 0.0 <= self.release <= 1.0:
            raise ValueError(f"release must be in [0, 1], got {self.release}")
        if self.min_channels < 1:
            raise ValueError("min_channels must be >= 1")
        if not 0.0 <= self.cost_power <= 2.0:
            raise ValueError(f"cost_power must be in [0, 2], got {self.cost_power}")
        if not 0.0 <= self.min_fraction < 1.0:
            raise ValueError(f"min_fraction must be in [0, 1), got {self.min_fraction}")
        for name, literal in _CHOICES.items():
            choices = get_args(literal)
            if getattr(self, name) not in choices:
                listed = ", ".join(choices[:-1]) + f" or {choices[-1]}"
                raise ValueError(f"{name} must be {listed}, got {getattr(self, name)!r}")
        if not 0.0 <= self.int8_max_drop <= 1.0:
            raise ValueError(f"int8_max_drop must be in [0, 1], got {self.int8_max_drop}")
        if not 1 <= self.int8_calibration_samples <= 100_000:
            raise ValueError("int8_calibration_samples must be in [1, 100000]")
        if self.data_workers is not None and not 0 <= self.data_workers <= 64:
            raise ValueError(f"data_workers must be in 0..64, got {self.data_workers}")
        if not 0.0 <= self.distill <= 1.0:
            raise ValueError(f"distill must be in [0, 1], got {self.distill}")
        if not 0.0 < self.distill_temperature <= 100.0:
            raise ValueError(
                f"distill_temperature must be in (0, 100], got {self.distill_temperature}"
            )
        if not 1 <= self.channel_multiple <= MAX_CHANNEL_MULTIPLE:
            raise ValueError(f"channel_multiple must be in [1, {MAX_CHANNEL_MULTIPLE}]")
        for name in ("lr", "structure_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")

    @property
    def distills_structure_learning(self) -> bool:
        """Whether structure learning trains against the teacher too (weight learning does
        whenever `distill` > 0): the one place that reads `distill_phases`."""
        return self.distill > 0 and self.distill_phases == "both"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# The string options of CompressConfig and the Literal that lists each one's values.
_CHOICES: dict[str, Any] = {
    "release_schedule": ReleaseSchedule,
    "release_rounding": ReleaseRounding,
    "finetune_schedule": FinetuneSchedule,
    "target_fit": TargetFit,
    "precision": Precision,
    "quantize": Quantize,
    "correction": Correction,
    "selection": ChannelSelection,
    "distill_phases": DistillPhases,
    "unit_source": UnitSource,
    "residual": ResidualPolicy,
}


@dataclass(frozen=True)
class ProgressEvent:
    """One progress report. `progress` is the whole run's fraction done, 0..1."""

    phase: Phase
    progress: float
    epoch: int | None = None
    epochs: int | None = None
    step: int | None = None
    steps: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    channels: dict[str, int] | None = None
    # Structure learning only: what redistribution proposed before the target fit.
    proposed: dict[str, int] | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunHooks:
    """How a driver observes and steers a run. Every field is optional.

    on_progress: called with every event (each step, each epoch end, each phase change).
    should_cancel: polled once per training step; True makes the engine raise `Cancelled`.
    save_checkpoint / load_checkpoint: persist and restore the resumable state (a dict of
        tensors and plain values, safe for torch.save / torch.load(weights_only=True)); saved at
        the end of every epoch of structure and weight learning.
    """

    on_progress: Callable[[ProgressEvent], None] | None = None
    should_cancel: Callable[[], bool] | None = None
    save_checkpoint: Callable[[dict[str, Any]], None] | None = None
    load_checkpoint: Callable[[], dict[str, Any] | None] | None = None
