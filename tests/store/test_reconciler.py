"""The reconciler against real brokers: Redis (with PostgreSQL) and the SQLite transport."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from infra.queue import JobQueue
from infra.settings import Settings
from infra.store import jobs, uploads
from infra.store.db import make_engine, make_session_factory
from infra.store.migrate import upgrade_database
from infra.store.models import Job, Model, utcnow
from service.reconciler import WORKER_LOST, Reconciler, reconcile_once
from tests.conftest import create_pg_database, drop_pg_database
from tests.store.rows import add_job

pytestmark = pytest.mark.integration


@pytest.fixture(params=["redis+postgres", "sqla+sqlite"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, unique_suffix: str
) -> Iterator[tuple[Settings, sessionmaker[Session], JobQueue]]:
    pg_url = None
    if request.param == "redis+postgres":
        # A database of its own: the reconciler acts on every queued job it can see.
        db_url = pg_url = create_pg_database("edgeprune_reconcile")
        upgrade_database(db_url)
        broker_url = str(request.getfixturevalue("redis_url"))
    else:
        db_url = f"sqlite:///{tmp_path / 'jobs.db'}"
        upgrade_database(db_url)
        broker_url = f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        broker_url=broker_url,
        queue_name=f"gpu-test-{unique_suffix}",
        inspect_queue_name=f"inspect-test-{unique_suffix}",
        heartbeat_timeout_s=30,
        enqueue_grace_s=5,
        reconcile_interval_s=0.2,
        max_attempts=3,
    )
    engine = make_engine(db_url)
    queue = JobQueue(settings)
    yield settings, make_session_factory(engine), queue
    queue.close()
    engine.dispose()
    if pg_url is not None:
        drop_pg_database(pg_url)
    if broker_url.startswith("redis"):
        client = redis.Redis.from_url(broker_url)
        for key in client.scan_iter(f"*{unique_suffix}*"):
            client.delete(key)


def _age(sessions: sessionmaker[Session], job_id: str, **columns: timedelta) -> None:
    """Push timestamps into the past, as if time had passed."""
    values = {name: utcnow() - delta for name, delta in columns.items()}
    with sessions.begin() as session:
        session.execute(update(Job).where(Job.id == job_id).values(**values))


def _job(sessions: sessionmaker[Session], job_id: str) -> Job:
    with sessions() as session:
        return jobs.get_job(session, job_id)


def test_queued_job_missing_from_broker_is_sent_again(
    setup: tuple[Settings, sessionmaker[Session], JobQueue],
) -> None:
    settings, sessions, queue = setup
    lost = add_job(sessions, enqueued_at=utcnow() - timedelta(hours=1))
    add_job(sessions, enqueued_at=utcnow())
    waiting = add_job(sessions, enqueued_at=utcnow() - timedelta(hours=1))
    queue.enqueue_job(waiting)
    assert queue.snapshot().ready == {waiting}

    report = reconcile_once(sessions, queue, settings)
    assert report.resent == [lost]  # `fresh` is within the grace period, `waiting` is queued
    assert queue.snapshot().ready == {waiting, lost}
    assert queue.broker_has_job(lost)
    # Nothing more to do on the next pass.
    assert reconcile_once(sessions, queue, settings).resent == []


@pytest.mark.parametrize("setup", ["redis+postgres"], indirect=True)
def test_a_taken_message_whose_job_never_started_is_resent_after_the_start_timeout(
    setup: tuple[Settings, sessionmaker[Session], JobQueue],
) -> None:
    settings, sessions, queue = setup
    job_id = add_job(sessions, enqueued_at=utcnow() - timedelta(hours=1))  # queued for long
    queue.enqueue_job(job_id)
    with queue.app.connection_for_read() as conn:
        channel = conn.default_channel
        # A worker takes the message (unacknowledged) ...
        message = channel.basic_get(settings.queue_name, no_ack=False)
        assert message is not None
        snapshot = queue.snapshot()
        assert job_id in snapshot.reserved and job_id not in snapshot.ready
        # ... just now: it is starting the job, however long the job waited in the queue.
        assert reconcile_once(sessions, queue, settings).resent == []
        # Taken longer than start_timeout_s ago and still not started: sent again, once.
        taken = time.time() - settings.start_timeout_s - 1
        channel.client.zadd(channel.unacked_index_key, {message.delivery_tag: taken})
        assert reconcile_once(sessions, queue, settings).resent == [job_id]
        assert job_id in queue.snapshot().ready
        assert reconcile_once(sessions, queue, settings).resent == []
    # The old delivery starts after all: one of the two deliveries claims the job.
    with sessions.begin() as session:
        assert jobs.mark_running(session, job_id, "old delivery").lease == 1
    with sessions.begin() as session:
        assert jobs.mark_running(session, job_id, "re-sent delivery").lease is None


def test_stale_running_job_is_requeued_then_failed_after_max_attempts(
    setup: tuple[Settings, sessionmaker[Session], JobQueue],
) -> None:
    settings, sessions, queue = setup
    job_id = add_job(sessions)
    for attempt in (1, 2, 3):
        with sessions.begin() as session:  # a worker takes the delivery
            assert jobs.mark_running(session, job_id, f"w{attempt}").lease == attempt
        assert reconcile_once(sessions, queue, settings).requeued == []  # beating: left alone
        _age(sessions, job_id, heartbeat_at=timedelta(seconds=settings.heartbeat_timeout_s + 5))
        report = reconcile_once(sessions, queue, settings)
        job = _job(sessions, job_id)
        if attempt < settings.max_attempts:
            assert report.requeued == [job_id]
            assert (job.state, job.attempts, job.worker) == ("queued", attempt, None)
            assert job_id in queue.snapshot().ready
        else:
            assert report.failed == [job_id]
            assert (job.state, job.attempts, job.error_type) == ("failed", 3, WORKER_LOST)
            assert "stopped sending heartbeats" in (job.error_message or "")


def test_stale_job_with_cancel_requested_is_canceled(
    setup: tuple[Settings, sessionmaker[Session], JobQueue],
) -> None:
    settings, sessions, queue = setup
    job_id = add_job(sessions)
    with sessions.begin() as session:
        jobs.mark_running(session, job_id, "w")
        assert jobs.request_cancel(session, job_id) == "running"
    _age(sessions, job_id, heartbeat_at=timedelta(hours=1))
    assert reconcile_once(sessions, queue, settings).canceled == [job_id]
    assert _job(sessions, job_id).state == "canceled"
    assert not queue.broker_has_job(job_id)


def test_reconciler_thread_runs_passes_until_stopped(
    setup: tuple[Settings, sessionmaker[Session], JobQueue],
) -> None:
    settings, sessions, queue = setup
    job_id = add_job(sessions, enqueued_at=utcnow() - timedelta(hours=1))
    reconciler = Reconciler(sessions, queue, settings)
    reconciler.start()
    try:
        deadline = time.monotonic() + 20
        while not queue.broker_has_job(job_id):
            assert time.monotonic() < deadline, "the reconciler never re-sent the job"
            time.sleep(0.2)
    finally:
        reconciler.stop()
    assert reconciler._thread is None


def _add_model(sessions: sessionmaker[Session], age: timedelta, *, inspected: bool = False) -> str:
    with sessions.begin() as session:
        model = uploads.add_model(
            session, name="m", arch="vgg11", num_classes=10, input_shape=[1, 32, 32],
            filename="m.pt", format="pt", sha256="c" * 64, size=1, created_at=utcnow() - age,
        )  # fmt: skip
        if inspected:
            uploads.mark_model_ready(session, model.id, params=1000, flops=5000)
        return model.id


def test_lost_inspections_are_resent_then_abandoned(
    setup: tuple[Settings, sessionmaker[Session], JobQueue],
) -> None:
    settings, sessions, queue = setup
    timeout = timedelta(seconds=settings.heartbeat_timeout_s)
    young = _add_model(sessions, timedelta(seconds=1))  # its inspection may still be running
    lost = _add_model(sessions, timeout * 1.5)
    hopeless = _add_model(sessions, timeout * (settings.max_attempts + 1))
    ready = _add_model(sessions, timeout * 5, inspected=True)
    sent: dict[str, datetime] = {}

    report = reconcile_once(sessions, queue, settings, inspections_sent=sent)
    assert report.resent_inspections == [lost]
    assert report.abandoned_inspections == [hopeless]
    assert queue.snapshot(settings.inspect_queue_name).ready == {lost}
    # Not again while the re-sent message waits or runs.
    assert reconcile_once(sessions, queue, settings, inspections_sent=sent).resent_inspections == []
    with sessions() as session:
        rows = {m: session.get_one(Model, m) for m in (young, lost, hopeless, ready)}
    statuses = {m: row.status for m, row in rows.items()}
    error = rows[hopeless].error
    assert statuses == {young: "pending", lost: "pending", hopeless: "invalid", ready: "ready"}
    assert error and "upload it again" in error
