"""Schemas of uploaded checkpoints (`/v1/models`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

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


class ModelsPublic(BaseModel):
    data: list[ModelPublic]
    count: int
