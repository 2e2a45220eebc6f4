"""Schemas of uploaded edge datasets (`/v1/datasets`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from service.api.schemas.common import UtcDatetime


class DatasetPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    filename: str
    format: str
    sha256: str
    size: int
    samples: int
    classes: list[str]
    input_shape: list[int]
    created_at: UtcDatetime


class DatasetsPublic(BaseModel):
    data: list[DatasetPublic]
    count: int
