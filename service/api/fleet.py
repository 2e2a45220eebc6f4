"""The fleet view: each device's status and assigned version, and a deployment's summary
(devices per version, online/stale, median on-device speedup and latency, failed installs).

Read-only; computed from the devices' summary columns and their latest benchmark of each
version (one row per device and version), so its cost grows with the fleet, not with the
number of reports devices have posted.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from infra.store import deployments as deployment_store
from infra.store.devices import OK
from infra.store.models import Deployment, DeploymentVersion, Device, DeviceReport, utcnow
from service.api.schemas.deployments import RolloutPublic
from service.api.schemas.devices import DevicePublic, DeviceStatus
from service.api.schemas.fleet import FailedInstall, FleetSummary, VersionFleet


def _aware(value: datetime | None) -> datetime | None:
    # SQLite gives naive datetimes back; everything is stored in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def device_status(device: Device, now: datetime, stale_after: timedelta) -> DeviceStatus:
    if device.revoked_at is not None:
        return "revoked"
    seen = _aware(device.last_seen_at)
    if seen is None:
        return "never_seen"
    return "online" if now - seen < stale_after else "stale"


def public_devices(
    session: Session, devices: Sequence[Device], stale_after: timedelta
) -> list[DevicePublic]:
    """Devices as the API shows them, with their status and the version their deployment's
    stage assigns them (one query for all their deployments)."""
    names = {d.deployment for d in devices}
    rows = session.scalars(select(Deployment).where(Deployment.name.in_(names))) if names else ()
    by_name: dict[str, Deployment] = {d.name: d for d in rows}
    now = utcnow()
    result = []
    for device in devices:
        deployment = by_name.get(device.deployment)
        assigned = deployment_store.assigned_version(deployment, device.id) if deployment else None
        result.append(
            DevicePublic.model_validate(
                {
                    **{k: getattr(device, k) for k in _DEVICE_COLUMNS},
                    "status": device_status(device, now, stale_after),
                    "assigned_version": None if device.revoked_at else assigned,
                }
            )
        )
    return result


_DEVICE_COLUMNS = (
    "id", "name", "deployment", "created_at", "last_seen_at", "revoked_at", "current_version",
    "last_report", "install_failure",
)  # fmt: skip


def rollout_public(session: Session, deployment: Deployment) -> RolloutPublic | None:
    if deployment.rollout_version is None or deployment.rollout_percent is None:
        return None
    staged = session.get(DeploymentVersion, (deployment.name, deployment.rollout_version))
    if staged is None:
        return None
    return RolloutPublic(
        version=staged.version, job_id=staged.job_id, percent=deployment.rollout_percent
    )


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _number(data: dict[str, Any], *path: str) -> float | None:
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _latest_benchmarks(session: Session, name: str) -> dict[int, list[dict[str, Any]]]:
    """version -> the latest ok report of each live device of the deployment that ran it."""
    latest = (
        select(func.max(DeviceReport.id))
        .join(Device, Device.id == DeviceReport.device_id)
        .where(
            Device.deployment == name,
            Device.revoked_at.is_(None),
            DeviceReport.status == OK,
            DeviceReport.version.is_not(None),
        )
        .group_by(DeviceReport.device_id, DeviceReport.version)
    )
    rows = session.execute(
        select(DeviceReport.version, DeviceReport.data).where(DeviceReport.id.in_(latest))
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for version, data in rows:
        found.setdefault(int(version), []).append(data or {})
    return found


def summary(session: Session, deployment: Deployment, stale_after: timedelta) -> FleetSummary:
    name = deployment.name
    devices = list(session.scalars(select(Device).where(Device.deployment == name)))
    now = utcnow()
    live = [d for d in devices if d.revoked_at is None]
    status = {d.id: device_status(d, now, stale_after) for d in devices}
    counts = Counter(status.values())
    assigned = Counter(deployment_store.assigned_version(deployment, d.id) for d in live)
    running = Counter(d.current_version for d in live)
    online = Counter(d.current_version for d in live if status[d.id] == "online")
    stale = Counter(d.current_version for d in live if status[d.id] == "stale")
    failed = [d for d in live if d.install_failure]
    failures = Counter((d.install_failure or {}).get("version") for d in failed)
    benchmarks = _latest_benchmarks(session, name)

    history = {v.version: v for v in deployment_store.history(session, name)}
    shown = {deployment.current_version, deployment.rollout_version}
    shown |= {v for v in running if v is not None} | set(benchmarks)
    shown |= {v for v in failures if isinstance(v, int)}
    versions = []
    for number in sorted((v for v in shown if v in history), reverse=True):
        reports = benchmarks.get(number, [])
        role = (
            "current"
            if number == deployment.current_version
            else "staged"
            if number == deployment.rollout_version
            else None
        )
        versions.append(
            VersionFleet(
                version=number,
                job_id=history[number].job_id,
                role=role,
                assigned=assigned.get(number, 0),
                running=running.get(number, 0),
                online=online.get(number, 0),
                stale=stale.get(number, 0),
                benchmarked=len(reports),
                median_speedup=_median(_number(r, "speedup") for r in reports),
                median_speedup_vs_fp32=_median(_number(r, "speedup_vs_fp32") for r in reports),
                median_latency_p50_ms=_median(_number(r, "latency", "p50_ms") for r in reports),
                median_latency_p99_ms=_median(_number(r, "latency", "p99_ms") for r in reports),
                install_failures=failures.get(number, 0),
            )
        )
    return FleetSummary(
        deployment=name,
        current_version=deployment.current_version,
        rollout=rollout_public(session, deployment),
        stale_after_s=stale_after.total_seconds(),
        devices=len(live),
        online=counts["online"],
        stale=counts["stale"],
        never_seen=counts["never_seen"],
        revoked=counts["revoked"],
        versions=versions,
        failed_installs=[
            FailedInstall(
                device_id=d.id,
                name=d.name,
                **{k: (d.install_failure or {}).get(k) for k in ("version", "sha256", "stage")},
                error=(d.install_failure or {}).get("error"),
                at=str((d.install_failure or {}).get("at", "")),
            )
            for d in sorted(failed, key=lambda d: d.name)
        ],
        generated_at=now,
    )
