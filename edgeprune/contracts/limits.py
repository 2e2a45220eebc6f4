"""What a compression request may ask for: one set of limits that the API validates a job
against (service/api/schemas/jobs.py) and the engine checks its config against
(pruning/config.py), so a job the API accepts is one the engine runs, and `edgeprune compress`
refuses what the API would."""

from __future__ import annotations

from typing import Literal, get_args

# What a target reduces.
Metric = Literal["flops", "params", "channels"]
METRICS: tuple[Metric, ...] = get_args(Metric)

# How a flops/params target is met, of the fits a job may choose: "scale" (the learned
# widths times one factor) or "cost_aware" (eq. 8's significance per unit of the cost a
# channel adds). The engine also has "greedy", kept for the benchmark's comparison only.
TargetFitChoice = Literal["scale", "cost_aware"]

# Which training phases follow the teacher when distilling: weight learning only, or
# structure learning too (its Taylor saliencies then come from the distilled loss). "both"
# is the default: it measured at or above "weights" on the 30-epoch photo cells.
DistillPhases = Literal["weights", "both"]
DEFAULT_DISTILL_PHASES: DistillPhases = "both"

# Whether the pruned model is also published as onnxruntime static INT8.
Quantize = Literal["none", "int8"]
# Training precision: "auto" picks bf16/fp16 autocast on a GPU that has it, fp32 elsewhere.
Precision = Literal["auto", "fp32", "bf16", "fp16"]

# A target's reduction is the fraction of its metric removed, strictly between these two:
# 0 would compress nothing, 1 would leave an empty network.
REDUCTION_ABOVE = 0.0
REDUCTION_BELOW = 1.0

# Epochs of each training phase (structure learning, weight learning).
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 4096
# Unit widths are kept multiples of this; SIMD blocks are 8 or 16 channels, 64 is plenty.
MAX_CHANNEL_MULTIPLE = 64


def reachable_limit(limits: object, metric: str, multiple: int) -> float | None:
    """The largest `metric` reduction a model allows at channel multiple `multiple`, read from
    the limits its inspection recorded (`{metric: [limit at multiple 1, 2, ...]}`,
    `pruning.engine.limits.reduction_limits`); None where nothing usable was recorded (a
    model inspected before limits were, or a network whose units could not be found)."""
    if not isinstance(limits, dict):
        return None
    values = limits.get(metric)
    if not isinstance(values, list) or not 1 <= multiple <= len(values):
        return None
    value = values[multiple - 1]
    return float(value) if isinstance(value, (int, float)) else None
