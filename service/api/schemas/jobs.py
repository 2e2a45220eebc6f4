"""Schemas of compression jobs (`/v1/jobs`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgeprune.contracts.jobs import JobState, Phase
from edgeprune.contracts.limits import (
    DEFAULT_DISTILL_PHASES,
    MAX_BATCH_SIZE,
    MAX_CHANNEL_MULTIPLE,
    MAX_EPOCHS,
    REDUCTION_ABOVE,
    REDUCTION_BELOW,
    DistillPhases,
    Metric,
    Precision,
    Quantize,
    TargetFitChoice,
)
from service.api.schemas.common import DeploymentName, UtcDatetime

# Strict, closed bodies: "0.5" (a string) is not a reduction and a misspelt field name is an
# error rather than a silently applied default.
_STRICT = ConfigDict(strict=True, extra="forbid")


class Target(BaseModel):
    model_config = _STRICT

    metric: Metric
    # Fraction of the metric to remove: strictly between 0 and 1 (0 is no compression, 1 is
    # an empty network); NaN and infinities are refused.
    reduction: Annotated[float, Field(gt=REDUCTION_ABOVE, lt=REDUCTION_BELOW, allow_inf_nan=False)]


class JobCreate(BaseModel):
    """A compression request.

    `structure_epochs` may be 0: the engine then prunes once from the calibration saliencies
    (ALGORITHM.md step 0) without structure learning. `finetune_epochs` must be at least 1:
    a pruned network (possibly with a re-initialised head) is never published untrained.
    """

    model_config = _STRICT

    model_id: Annotated[str, Field(min_length=1, max_length=32)]
    dataset_id: Annotated[str, Field(min_length=1, max_length=32)]
    target: Target
    structure_epochs: Annotated[int, Field(ge=0, le=MAX_EPOCHS)] = 10
    finetune_epochs: Annotated[int, Field(ge=1, le=MAX_EPOCHS)] = 10
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH_SIZE)] = 64
    lr: Annotated[float, Field(gt=0.0, le=10.0, allow_inf_nan=False)] = 0.01
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    # Keep unit widths multiples of this (1 = the paper's per-channel allocation; 8 or 16
    # fill CPU SIMD blocks and give more real speedup per FLOP removed).
    channel_multiple: Annotated[int, Field(ge=1, le=MAX_CHANNEL_MULTIPLE)] = 1
    # Training also distils the uploaded checkpoint's softened outputs with this
    # weight (0 = labels only, the paper's). 0.5 helped checkpoints that had finished
    # training and hurt undertrained ones (docs/algorithm.md).
    distill: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.0
    # Which phases follow the teacher when distilling: "weights" (weight learning only) or
    # "both" (structure learning too: its saliencies come from the distilled loss; measured
    # the better of the two, docs/algorithm.md).
    distill_phases: DistillPhases = DEFAULT_DISTILL_PHASES
    # How a flops/params target is met: "scale" (the learned widths times one factor) or
    # "cost_aware" (redistribution's regrowth per unit of the cost a channel adds: measured
    # better on MobileNet-style networks ending in wide 1x1 convs, worse on VGG-16;
    # docs/algorithm.md). A channels target ignores it.
    target_fit: TargetFitChoice = "scale"
    # The paper's shift-and-mirror augmentation. null (the default) = by the kind of data:
    # on for images (image folders, CIFAR, 8-bit .npz), off for float .npz arrays (sensor
    # windows, spectrograms) and builtin:digits, where a mirrored sample is another thing.
    augment: bool | None = None
    # "int8" also publishes model.int8.onnx (onnxruntime static QDQ, per-channel), unless its
    # test accuracy falls more than `int8_max_drop` below the fp32 model's.
    quantize: Quantize = "none"
    # Training arithmetic: "auto" = bf16 on CUDA that has it, fp16 + gradient scaler on CUDA
    # that does not, fp32 on the CPU.
    precision: Precision = "auto"
    int8_max_drop: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.01
    # Promote the job's model to this deployment automatically when it succeeds.
    deployment: DeploymentName | None = None
    # Below 100: that promotion is staged to this share of the deployment's devices (see
    # PUT /v1/deployments/{name}); a deployment's first version always goes to every device.
    rollout_percent: Annotated[int, Field(ge=1, le=100)] = 100

    @model_validator(mode="after")
    def _staging_needs_a_deployment(self) -> JobCreate:
        if self.rollout_percent < 100 and self.deployment is None:
            raise ValueError("rollout_percent stages the promotion to `deployment`: name it")
        return self


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    model_id: str
    dataset_id: str
    state: JobState
    phase: Phase | None
    progress: float
    config: dict[str, Any]
    deployment: str | None
    metrics: dict[str, Any]
    # edgeprune.contracts.report.JobSummary; left a plain object here so that the rows of
    # jobs from older versions (lacking newer keys) still list.
    summary: dict[str, Any] | None
    error_type: str | None
    error_message: str | None
    cancel_requested: bool
    attempts: int
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None


class JobCreated(JobPublic):
    """The answer to POST /v1/jobs: the job, and what the submitter should know about it
    (e.g. that the dataset's images will be resized to the model's input). Each note is
    also the job's `log` event, so it stays in `GET /v1/jobs/{id}/events`."""

    notes: list[str] = []


class JobsPublic(BaseModel):
    data: list[JobPublic]
    count: int


class ArtifactPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    sha256: str
    size: int
    content_type: str
