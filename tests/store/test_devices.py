"""Device lifecycle in the store: registration rules, revoke, delete, reports."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from infra.store import deployments
from infra.store import devices as device_store
from infra.store.models import Device, DeviceReport, Token, utcnow
from infra.store.tokens import lookup_token


def _deployment(sessions: sessionmaker[Session], new_job: Callable[..., str]) -> str:
    name = f"fleet-{uuid.uuid4().hex[:8]}"
    job = new_job(state="succeeded")
    with sessions.begin() as session:
        deployments.promote(session, name, job)
    return name


def _name() -> str:
    return f"cam-{uuid.uuid4().hex[:8]}"


def test_unknown_deployments_are_refused_unless_a_job_will_publish_there(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    planned = f"planned-{uuid.uuid4().hex[:8]}"
    with sessions.begin() as session, pytest.raises(device_store.UnknownDeployment):
        device_store.register(session, _name(), planned)
    new_job(state="failed", deployment=planned)
    with sessions.begin() as session, pytest.raises(device_store.UnknownDeployment):
        device_store.register(session, _name(), planned)
    new_job(state="running", deployment=planned)
    with sessions.begin() as session:
        assert device_store.register(session, _name(), planned).device.deployment == planned


def test_a_live_name_needs_force_which_revokes_the_old_device(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    deployment, name = _deployment(sessions, new_job), _name()
    with sessions.begin() as session:
        first = device_store.register(session, name, deployment)
    with sessions.begin() as session, pytest.raises(device_store.NameTaken):
        device_store.register(session, name, deployment)
    with sessions.begin() as session:
        second = device_store.register(session, name, deployment, force=True)
        assert second.replaced == first.device.id
    with sessions() as session:
        assert lookup_token(session, first.secret) is None
        assert lookup_token(session, second.secret) is not None
        old = session.get(Device, first.device.id)
        assert old is not None and old.revoked_at is not None
        live = device_store.live_device_named(session, name)
        assert live is not None and live.id == second.device.id


def test_the_database_refuses_two_live_devices_of_one_name(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    """What two concurrent registrations that both passed the check would do."""
    deployment, name = _deployment(sessions, new_job), _name()
    with sessions.begin() as session:
        session.add(Device(name=name, deployment=deployment))
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(Device(name=name, deployment=deployment))


def test_revoke_and_delete(sessions: sessionmaker[Session], new_job: Callable[..., str]) -> None:
    deployment = _deployment(sessions, new_job)
    with sessions.begin() as session:
        registered = device_store.register(session, _name(), deployment)
        device_id = registered.device.id
        device_store.record_report(
            session, registered.device, status="ok", version=1, data={"status": "ok"}
        )
    with sessions.begin() as session:
        revoked_at = device_store.revoke(session, device_id).revoked_at
        assert revoked_at is not None
    with sessions.begin() as session:
        again = device_store.revoke(session, device_id).revoked_at
        assert again is not None  # SQLite gives naive UTC datetimes back
        assert again.replace(tzinfo=None) == revoked_at.replace(tzinfo=None)  # idempotent
        assert lookup_token(session, registered.secret) is None
    with sessions.begin() as session:
        device_store.delete_device(session, device_id)
    with sessions() as session:
        assert session.get(Device, device_id) is None
        reports = select(DeviceReport).where(DeviceReport.device_id == device_id)
        assert session.scalars(reports).all() == []
        token = session.scalar(select(Token).where(Token.device_id == device_id))
        assert token is not None and token.revoked_at is not None  # kept, revoked
    with sessions.begin() as session, pytest.raises(device_store.DeviceNotFound):
        device_store.revoke(session, device_id)


def test_install_failures_are_kept_until_that_version_runs(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    deployment = _deployment(sessions, new_job)
    with sessions.begin() as session:
        device = device_store.register(session, _name(), deployment).device
        device_store.record_report(session, device, status="ok", version=1, data={"a": 1})
        failure = {"sha256": "c" * 64, "stage": "checksum", "error": "sha256 differs"}
        device_store.record_report(
            session, device, status="install_failed", version=2, data=failure
        )
    with sessions.begin() as session:
        device = session.get(Device, device.id, populate_existing=True)
        assert device is not None
        assert device.current_version == 1 and device.last_report == {"a": 1}
        assert device.install_failure is not None
        assert (device.install_failure["version"], device.install_failure["stage"]) == (
            2,
            "checksum",
        )
        # the old version's report again (posted late): the failure of v2 stands
        device_store.record_report(session, device, status="ok", version=1, data={"a": 2})
    with sessions.begin() as session:
        device = session.get(Device, device.id, populate_existing=True)
        assert device is not None and device.install_failure is not None
        device_store.record_report(session, device, status="ok", version=2, data={"a": 3})
    with sessions() as session:
        device = session.get(Device, device.id)
        assert device is not None
        assert device.install_failure is None and device.current_version == 2


def test_record_seen_moves_last_seen_forward_only(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    deployment = _deployment(sessions, new_job)
    with sessions.begin() as session:
        a = device_store.register(session, _name(), deployment).device.id
        b = device_store.register(session, _name(), deployment).device.id
    now = utcnow()
    earlier, later = now - timedelta(minutes=5), now + timedelta(minutes=5)

    def seen() -> dict[str, datetime | None]:
        with sessions() as session:
            rows = session.execute(
                select(Device.id, Device.last_seen_at).where(Device.id.in_([a, b]))
            )
            return {i: at if at is None or at.tzinfo else at.replace(tzinfo=UTC) for i, at in rows}

    with sessions.begin() as session:
        device_store.record_seen(session.connection(), {})  # nothing to write
        device_store.record_seen(session.connection(), {a: now})  # a first sighting
    assert seen() == {a: now, b: None}
    with sessions.begin() as session:  # one batch: a's older time is ignored, b's is written
        device_store.record_seen(session.connection(), {a: earlier, b: later})
    assert seen() == {a: now, b: later}
    with sessions.begin() as session:
        device_store.record_seen(session.connection(), {a: later})
    assert seen() == {a: later, b: later}
