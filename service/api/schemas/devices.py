"""Schemas of edge devices and their benchmark reports (`/v1/devices`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.api.schemas.common import MAX_DB_INT, DeploymentName, UtcDatetime

NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class DeviceCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    deployment: DeploymentName


class DevicePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    deployment: str
    created_at: UtcDatetime
    last_seen_at: UtcDatetime | None
    current_version: int | None
    last_report: dict[str, Any] | None


class DeviceCreated(DevicePublic):
    # Shown once: only its sha256 is stored.
    token: str


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
    count: int


class Latency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p50_ms: NonNegative
    p95_ms: NonNegative
    p99_ms: NonNegative

    @model_validator(mode="after")
    def _ordered(self) -> Latency:
        if not self.p50_ms <= self.p95_ms <= self.p99_ms:
            raise ValueError("percentiles must satisfy p50 <= p95 <= p99")
        return self


class DeviceReportCreate(BaseModel):
    """A benchmark (or update) report. The named fields are checked; further numbers the
    client measures (extra keys) are stored as sent, within the request size limit."""

    model_config = ConfigDict(extra="allow")

    version: Annotated[int, Field(ge=1, le=MAX_DB_INT)] | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    status: Annotated[str, Field(max_length=32)] = "ok"
    latency: Latency | None = None
    throughput_per_s: NonNegative | None = None
    peak_rss_mb: NonNegative | None = None
    threads: Annotated[int, Field(ge=1, le=1024)] | None = None
    baseline_latency: Latency | None = None
    speedup: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    accuracy: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    error: Annotated[str, Field(max_length=2000)] | None = None


class DeviceReportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str
    version: int | None
    data: dict[str, Any]
    created_at: UtcDatetime


class DeviceReportsPublic(BaseModel):
    data: list[DeviceReportPublic]
    count: int
