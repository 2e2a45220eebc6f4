"""Schemas of deployments (`/v1/deployments`): named pointers at a succeeded job's model."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from edgeprune.contracts.edge import Variant
from service.api.schemas.common import MAX_DB_INT, UtcDatetime

Percent = Annotated[int, Field(ge=1, le=100)]


class DeploymentPromote(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    job_id: str
    # Below 100: a staged rollout to that share of the deployment's devices (stable by a
    # hash of the device id); the others keep the current version until `widen`.
    percent: Percent = 100


class DeploymentWiden(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    # 100 (the default) ends the stage: the staged version becomes every device's.
    percent: Percent = 100


class RolloutPublic(BaseModel):
    version: int
    job_id: str
    percent: int


class DeploymentVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    job_id: str
    created_at: UtcDatetime


class DeploymentPublic(BaseModel):
    name: str
    # The stable version: every device outside a staged rollout runs it.
    current_version: int | None
    current_job_id: str | None
    rollout: RolloutPublic | None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    # Newest first.
    history: list[DeploymentVersionPublic]


class DeploymentsPublic(BaseModel):
    data: list[DeploymentPublic]
    count: int


# The manifest's models mirror edgeprune.contracts.edge (tests/contracts checks their fields).


class ManifestVariant(BaseModel):
    """One form of the current model a device may choose: "fp32" (always) or "int8"."""

    name: Variant
    sha256: str
    size: int
    url: str
    accuracy: float | None  # on the task's test split, measured with onnxruntime
    # int8 only: its speed over fp32's on the worker's CPU (batch 1, one thread), a hint.
    speed_over_fp32: float | None = None


class Preprocessing(BaseModel):
    """How a device turns a sample into the model's input, per channel c:
    x = (value · value_scale − mean[c]) / std[c], laid out as `layout`."""

    layout: Literal["NCHW"]
    mean: list[float]
    std: list[float]
    value_scale: float


class Manifest(BaseModel):
    """What a device polls: enough to download, verify and run the current model. `sha256`,
    `size` and `url` are the fp32 model's; `variants` lists every form published."""

    deployment: str
    version: int
    job_id: str
    sha256: str
    size: int
    url: str
    baseline_url: str | None
    baseline_sha256: str | None
    input_shape: list[int]
    classes: list[str]
    flops: int | None
    params: int | None
    variants: list[ManifestVariant]
    preprocessing: Preprocessing | None


class DeploymentRollback(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    # Default: the version before the current one.
    version: Annotated[int, Field(ge=1, le=MAX_DB_INT)] | None = None
