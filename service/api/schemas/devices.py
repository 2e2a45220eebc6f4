"""Schemas of edge devices and their benchmark reports (`/v1/devices`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgeprune.contracts.edge import InstallStage, ReportStatus, Variant
from service.api.schemas.common import MAX_DB_INT, DeploymentName, UtcDatetime

NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


class DeviceCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=200)]
    deployment: DeploymentName
    # A live device with this name is refused (409) unless `force`, which revokes it (and
    # its token) and registers the new one in its place.
    force: bool = False


# never_seen: registered, no poll yet; online: seen within `device_stale_after_s`;
# stale: silent for longer; revoked: its token no longer works.
DeviceStatus = Literal["never_seen", "online", "stale", "revoked"]


class InstallFailure(BaseModel):
    version: int | None
    sha256: str | None
    stage: str | None
    error: str | None
    at: str


class DevicePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    deployment: str
    status: DeviceStatus
    created_at: UtcDatetime
    last_seen_at: UtcDatetime | None
    revoked_at: UtcDatetime | None
    # What the device last reported running, and what its deployment's stage assigns it.
    current_version: int | None
    assigned_version: int | None
    last_report: dict[str, Any] | None
    # The latest install that failed on the device, until it runs that version or a newer.
    install_failure: InstallFailure | None


class DeviceCreated(DevicePublic):
    # Shown once: only its sha256 is stored.
    token: str
    # The device a forced registration revoked.
    replaced: str | None = None


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
    """A benchmark (or update) report: edgeprune.contracts.edge.DeviceReport, whose fields
    these are (tests/contracts checks). The named fields are checked; further numbers the
    client measures (extra keys) are stored as sent, within the request size limit."""

    model_config = ConfigDict(extra="allow")

    version: Annotated[int, Field(ge=1, le=MAX_DB_INT)] | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    # "ok": a benchmark of the installed model (`version` is the one it ran);
    # "install_failed": the install of `version`/`sha256` stopped at `stage`, with `error`.
    status: ReportStatus = "ok"
    stage: InstallStage | None = None
    latency: Latency | None = None
    throughput_per_s: NonNegative | None = None
    peak_rss_mb: NonNegative | None = None
    threads: Annotated[int, Field(ge=1, le=1024)] | None = None
    baseline_latency: Latency | None = None
    speedup: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    accuracy: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] | None = None
    error: Annotated[str, Field(max_length=2000)] | None = None
    # Which published variant ran, and (edge-client --also-fp32) the fp32 pruned model's
    # latency beside an int8 one: what quantization bought on this device.
    variant: Variant | None = None
    fp32_latency: Latency | None = None
    speedup_vs_fp32: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _failure_says_where(self) -> DeviceReportCreate:
        if self.status == "install_failed" and self.stage is None:
            raise ValueError("an install_failed report needs its stage")
        if self.status == "install_failed" and self.version is None and self.sha256 is None:
            raise ValueError("an install_failed report names the version or sha256 it tried")
        if self.status == "ok" and self.stage is not None:
            raise ValueError("stage belongs to install_failed reports only")
        return self


class DeviceReportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    device_id: str
    version: int | None
    status: str
    data: dict[str, Any]
    created_at: UtcDatetime


class DeviceReportsPublic(BaseModel):
    data: list[DeviceReportPublic]
    count: int
