"""Schemas of `/v1/architectures`: what the workers can build."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from service.api.schemas.common import UtcDatetime


class ArchitecturePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    # "zoo": ships with EdgePrune; "installed": an `edgeprune.models` entry point of a
    # package installed on the worker that reported it.
    source: Literal["zoo", "installed"]
    reported_by: str | None
    reported_at: UtcDatetime | None


class ArchitecturesPublic(BaseModel):
    data: list[ArchitecturePublic]
    count: int
