"""Schemas of uploaded checkpoints (`/v1/models`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from edgeprune.contracts.limits import METRICS, reachable_limit
from service.api.schemas.common import UtcDatetime

ModelStatus = Literal["pending", "ready", "invalid"]


class ModelPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    # null while pending (and on an invalid model) when the upload left them to the
    # inspection, which reads them from the checkpoint; a ready model has all three.
    arch: str | None
    num_classes: int | None
    input_shape: list[int] | None
    filename: str
    format: str
    sha256: str
    size: int
    # `pending` until a worker has loaded the checkpoint into `arch`; then `ready` (with
    # params and flops) or `invalid` (with the worker's one-line reason in `error`).
    status: ModelStatus
    params: int | None
    flops: int | None
    error: str | None
    created_at: UtcDatetime
    # The inspection's table of reachable reductions (per metric and channel multiple); the
    # job submission checks a target against it. Not sent: `max_reduction` summarises it.
    limits: Any = Field(default=None, exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def max_reduction(self) -> dict[str, float] | None:
        """The largest reduction of each metric a job may ask for with channel_multiple 1
        (every prunable unit at its floor; a larger multiple allows less, and the submission
        checks the job's own). null before the inspection, and for models inspected before
        it recorded limits."""
        found = {m: reachable_limit(self.limits, m, 1) for m in METRICS}
        values: dict[str, float] = {m: v for m, v in found.items() if v is not None}
        return values or None


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int
