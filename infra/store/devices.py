"""Devices: registration, revocation, deletion, their reports and when they were last seen
(the one write side).

A device is live until it is revoked. At most one live device carries a name (a partial
unique index); registering a name that is live again needs `force`, which revokes the old
device and its tokens in the same transaction, so no two live devices share a name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from edgeprune.contracts.jobs import JobState
from infra.store import poll_generation
from infra.store.models import Deployment, Device, DeviceReport, Job, Token, utcnow
from infra.store.tokens import create_token

OK = "ok"
INSTALL_FAILED = "install_failed"
# Where a device's install of a new model stopped: the download's size/sha256 did not match
# the manifest, onnxruntime could not open it, or its test inference failed.
INSTALL_STAGES = ("checksum", "load", "inference")


class DeviceNotFound(LookupError):
    def __init__(self, device_id: str) -> None:
        super().__init__(f"no device with id {device_id!r}")
        self.device_id = device_id


class UnknownDeployment(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"no deployment named {name!r}: promote a job to it first, or submit a job with "
            f"deployment {name!r} (devices may register while it runs)"
        )
        self.name = name


class NameTaken(Exception):
    def __init__(self, name: str, device_id: str) -> None:
        super().__init__(
            f"a live device named {name!r} is registered already ({device_id}); register with "
            "force to revoke it and replace it, or revoke it first"
        )
        self.name = name
        self.device_id = device_id


@dataclass(frozen=True)
class Registered:
    device: Device
    secret: str  # the device token, shown once
    replaced: str | None  # the id of the device this registration revoked (force)


def deployment_is_known(session: Session, name: str) -> bool:
    """A deployment exists, or a queued/running job will promote its model to it."""
    if session.get(Deployment, name) is not None:
        return True
    unfinished = (JobState.QUEUED.value, JobState.RUNNING.value)
    pending = select(Job.id).where(Job.deployment == name, Job.state.in_(unfinished))
    return session.scalar(pending.limit(1)) is not None


def live_device_named(session: Session, name: str) -> Device | None:
    stmt = select(Device).where(Device.name == name, Device.revoked_at.is_(None))
    return session.scalar(stmt)


def register(session: Session, name: str, deployment: str, *, force: bool = False) -> Registered:
    """A new device and its token. Raises UnknownDeployment, or NameTaken without `force`.

    Two concurrent registrations of one name both pass the check here; the partial unique
    index refuses the second at flush (IntegrityError), which the caller reports as taken.
    """
    if not deployment_is_known(session, deployment):
        raise UnknownDeployment(deployment)
    replaced = None
    existing = live_device_named(session, name)
    if existing is not None:
        if not force:
            raise NameTaken(name, existing.id)
        revoke(session, existing.id)
        replaced = existing.id
    device = Device(name=name, deployment=deployment)
    session.add(device)
    session.flush()
    _, secret = create_token(session, f"device {name}", kind="device", device_id=device.id)
    return Registered(device, secret, replaced)


def get(session: Session, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise DeviceNotFound(device_id)
    return device


def revoke(session: Session, device_id: str) -> Device:
    """Revoke the device and every token it holds; its next request is refused (401).
    Idempotent: a revoked device keeps its first revocation time."""
    device = get(session, device_id)
    now = utcnow()
    if device.revoked_at is None:
        device.revoked_at = now
    session.execute(
        update(Token)
        .where(Token.device_id == device_id, Token.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    poll_generation.credentials_changed(session)
    session.flush()
    return device


def delete_device(session: Session, device_id: str) -> None:
    """Forget the device and its reports; its tokens stay, revoked, as the audit trail."""
    revoke(session, device_id)
    session.execute(delete(DeviceReport).where(DeviceReport.device_id == device_id))
    session.execute(delete(Device).where(Device.id == device_id))
    session.flush()


def record_report(
    session: Session, device: Device, *, status: str, version: int | None, data: dict[str, Any]
) -> DeviceReport:
    """Store a report and update the device's summary columns.

    An ok report says what the device runs now (current_version, last_report) and clears an
    install failure of that version or an older one. A failed install leaves what the device
    runs unchanged and records the failure.
    """
    report = DeviceReport(device_id=device.id, version=version, status=status, data=data)
    session.add(report)
    now = utcnow()
    values: dict[str, Any] = {"last_seen_at": now}
    if status == OK:
        values["last_report"] = data
        if version is not None:
            values["current_version"] = version
        failure = device.install_failure or {}
        failed_version = failure.get("version")
        if failure and (
            version is None or failed_version is None or int(failed_version) <= version
        ):
            values["install_failure"] = None
    else:
        values["install_failure"] = {
            "version": version,
            "sha256": data.get("sha256"),
            "stage": data.get("stage"),
            "error": data.get("error"),
            "at": now.isoformat(),
        }
    session.execute(
        update(Device)
        .where(Device.id == device.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    return report


# Built once: the poll path runs it for every batch of polls.
_SEEN = (
    update(Device)
    .where(
        Device.id == bindparam("device"),
        or_(Device.last_seen_at.is_(None), Device.last_seen_at < bindparam("seen")),
    )
    .values(last_seen_at=bindparam("seen"))
)


def record_seen(connection: Connection, seen: Mapping[str, datetime]) -> None:
    """Move each device's `last_seen_at` forward to the time given (never back), in one
    executemany. A Connection, not a Session: the poll path writes its batches outside any
    ORM unit of work (a route passes `session.connection()`)."""
    if seen:
        connection.execute(_SEEN, [{"device": device, "seen": at} for device, at in seen.items()])
