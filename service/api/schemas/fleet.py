"""Schema of a deployment's fleet summary (`GET /v1/deployments/{name}/fleet`)."""

from __future__ import annotations

from pydantic import BaseModel

from service.api.schemas.common import UtcDatetime
from service.api.schemas.deployments import RolloutPublic


class VersionFleet(BaseModel):
    """One version of the deployment as the fleet sees it. Device counts are of live
    (unrevoked) devices; medians are across devices, each device's latest benchmark of this
    version counting once."""

    version: int
    job_id: str
    role: str | None  # "current" | "staged" | None (an earlier version some device still runs)
    assigned: int  # devices the deployment's stage assigns this version
    running: int  # devices whose latest report says they run it
    online: int  # of those running it, seen within the stale window
    stale: int
    benchmarked: int  # devices with a benchmark of this version
    median_speedup: float | None
    # Int8 devices that also timed the fp32 pruned model (edge-client --also-fp32): what
    # quantization bought on top of pruning.
    median_speedup_vs_fp32: float | None
    median_latency_p50_ms: float | None
    median_latency_p99_ms: float | None
    install_failures: int  # devices whose install of this version failed (not yet fixed)


class FailedInstall(BaseModel):
    device_id: str
    name: str
    version: int | None
    sha256: str | None
    stage: str | None  # "checksum" | "load" | "inference"
    error: str | None
    at: str


class FleetSummary(BaseModel):
    deployment: str
    current_version: int | None
    rollout: RolloutPublic | None
    stale_after_s: float
    devices: int  # live devices
    online: int
    stale: int
    never_seen: int
    revoked: int
    # Newest first: the current and staged versions, and any other a device still runs.
    versions: list[VersionFleet]
    failed_installs: list[FailedInstall]
    generated_at: UtcDatetime
