"""What a token may read. Admin tokens may do everything; device tokens (issue 4) only read
their own deployment's manifest and artifacts and post their own reports."""

from __future__ import annotations

from datetime import UTC, timedelta

from sqlalchemy.orm import Session

from infra.store import devices as device_store
from infra.store.models import Device, Token, utcnow
from service.api import crud
from service.api.errors import Forbidden

# Polls are the hottest path: refresh a device's last_seen at most this often (one write per
# device per minute instead of one per poll).
LAST_SEEN_RESOLUTION = timedelta(seconds=60)


def token_device(session: Session, token: Token) -> Device | None:
    """The device behind a device token; None for admin tokens."""
    if token.kind == "admin":
        return None
    device = session.get(Device, token.device_id) if token.device_id else None
    if device is None:
        raise Forbidden("this token belongs to no registered device")
    return device


def require_deployment(session: Session, token: Token, deployment: str) -> Device | None:
    device = token_device(session, token)
    if device is not None and device.deployment != deployment:
        raise Forbidden(f"this device belongs to deployment {device.deployment!r}")
    return device


def require_artifact(session: Session, token: Token, sha256: str) -> None:
    device = token_device(session, token)
    if device is not None and not crud.deployment_serves_artifact(
        session, device.deployment, sha256
    ):
        raise Forbidden("this artifact is not published to this device's deployment")


def require_device(session: Session, token: Token, device_id: str) -> None:
    device = token_device(session, token)
    if device is not None and device.id != device_id:
        raise Forbidden("a device token may only act for its own device")


def touch_device(session: Session, device: Device) -> None:
    now = utcnow()
    seen = device.last_seen_at
    if seen is not None and seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)  # SQLite gives naive datetimes back; we store UTC
    if seen is None or now - seen >= LAST_SEEN_RESOLUTION:
        device_store.record_seen(session.connection(), {device.id: now})
        session.commit()
