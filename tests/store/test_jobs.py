"""Job-state transitions and the per-job event log, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from infra.store import job_events, job_recovery, jobs
from infra.store.models import JobArtifact, utcnow
from tests.store.rows import add_inputs


def test_append_event_seqs_have_no_gaps_under_concurrent_writers(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    job_id = new_job()
    threads, per_thread = 6, 15
    handed_out: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def writer(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with sessions.begin() as session:
                    seq = job_events.append_event(session, job_id, "log", {"writer": n, "i": i})
                with lock:
                    handed_out.append(seq)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    pool = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not errors, errors
    total = 1 + threads * per_thread  # seq 1 is the job's `queued` event
    assert sorted(handed_out) == list(range(2, total + 1))
    with sessions() as session:
        stored = [e.seq for e in job_events.events_after(session, job_id, 0, limit=1000)]
        assert stored == list(range(1, total + 1))
        assert jobs.get_job(session, job_id).last_event_seq == total
        # Each writer's own events keep their order.
        events = job_events.events_after(session, job_id, 0, limit=1000)
    for n in range(threads):
        mine = [e.data["i"] for e in events if e.data.get("writer") == n]
        assert mine == list(range(per_thread))


def test_seqs_are_per_job_and_rollback_leaves_no_gap(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    a, b = new_job(), new_job()  # each has its `queued` event, seq 1
    with sessions.begin() as session:
        assert job_events.append_event(session, a, "log", {}) == 2
        assert job_events.append_event(session, b, "log", {}) == 2
    with pytest.raises(RuntimeError), sessions.begin() as session:
        assert job_events.append_event(session, a, "log", {}) == 3
        raise RuntimeError("abort the transaction")
    with sessions.begin() as session:
        assert job_events.append_event(session, a, "log", {}) == 3
        assert [e.seq for e in job_events.events_after(session, a, 2)] == [3]
    with pytest.raises(jobs.JobNotFound), sessions.begin() as session:
        job_events.append_event(session, "job_missing", "log", {})


def test_claim_heartbeat_and_finish_are_lease_fenced_and_idempotent(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    job_id = new_job()
    with sessions.begin() as session:
        claim = jobs.mark_running(session, job_id, "w1")
    assert claim == jobs.Claim(state="running", lease=1)
    with sessions.begin() as session:
        # A second delivery of the same message does not take the job over.
        assert jobs.mark_running(session, job_id, "w2") == jobs.Claim(state="running")
        assert jobs.heartbeat(session, job_id, 1)
        assert not jobs.heartbeat(session, job_id, 2)
        assert jobs.update_progress(session, job_id, 1, phase="pruning", progress=0.4)
        assert not jobs.mark_succeeded(session, job_id, 2, {})  # wrong lease
        assert jobs.mark_succeeded(session, job_id, 1, {"achieved": 0.5})
        assert not jobs.mark_succeeded(session, job_id, 1, {"achieved": 0.5})
        assert not jobs.mark_failed(session, job_id, 1, "X", "late")
        assert jobs.mark_running(session, job_id, "w3") == jobs.Claim(state="succeeded")
    with sessions() as session:
        job = jobs.get_job(session, job_id)
        assert (job.state, job.attempts, job.worker, job.progress) == ("succeeded", 1, "w1", 1.0)
        assert job.summary == {"achieved": 0.5}
        assert job.finished_at is not None and job.started_at is not None
        states = [
            e.data["state"] for e in job_events.events_after(session, job_id) if e.kind == "state"
        ]
    assert states == ["queued", "running", "succeeded"]


def test_failure_message_is_one_line(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    job_id = new_job()
    with sessions.begin() as session:
        lease = jobs.mark_running(session, job_id, "w").lease
        assert jobs.mark_failed(session, job_id, lease, "DataError", "bad file\n  line two\n")
    with sessions() as session:
        job = jobs.get_job(session, job_id)
    assert (job.state, job.error_type, job.error_message) == (
        "failed",
        "DataError",
        "bad file line two",
    )


def test_cancel_queued_is_immediate_and_running_is_cooperative(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    queued, running = new_job(), new_job()
    with sessions.begin() as session:
        lease = jobs.mark_running(session, running, "w").lease
    with sessions.begin() as session:
        assert jobs.request_cancel(session, queued) == "canceled"
        assert jobs.request_cancel(session, queued) == "canceled"  # idempotent
        assert jobs.request_cancel(session, running) == "running"
        assert jobs.request_cancel(session, running) == "running"
        assert jobs.cancel_requested(session, running)
        assert jobs.mark_running(session, queued, "w") == jobs.Claim(state="canceled")
    with sessions.begin() as session:
        assert jobs.mark_canceled(session, running, lease)
        assert not jobs.mark_canceled(session, running, lease)
        assert jobs.request_cancel(session, running) == "canceled"
        logs = [e.data for e in job_events.events_after(session, running) if e.kind == "log"]
    assert logs == [{"message": "cancel requested"}]  # asked twice, logged once
    with pytest.raises(jobs.JobNotFound), sessions.begin() as session:
        jobs.request_cancel(session, "job_missing")


def test_requeue_stale_only_when_heartbeat_is_still_stale(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    job_id = new_job()
    with sessions.begin() as session:
        lease = jobs.mark_running(session, job_id, "w").lease
        assert lease == 1
    cutoff = utcnow() - timedelta(seconds=60)
    with sessions.begin() as session:
        assert not job_recovery.requeue_stale(session, job_id, lease, cutoff)  # fresh heartbeat
        assert job_recovery.requeue_stale(session, job_id, lease, utcnow() + timedelta(seconds=1))
        assert not job_recovery.requeue_stale(
            session, job_id, lease, utcnow() + timedelta(seconds=1)
        )
        # The old run is fenced off; the next delivery gets lease 2.
        assert not jobs.heartbeat(session, job_id, lease)
        assert jobs.mark_running(session, job_id, "w2").lease == 2


def test_success_loses_to_a_requested_cancel(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    """A cancel the API accepted (202) is never followed by `succeeded`: the condition is in
    the UPDATE, so the worker learns it must cancel instead."""
    job_id = new_job()
    with sessions.begin() as session:
        lease = jobs.mark_running(session, job_id, "w").lease
        assert jobs.request_cancel(session, job_id) == "running"
    with sessions.begin() as session:
        assert not jobs.mark_succeeded(session, job_id, lease, {})
        assert jobs.mark_canceled(session, job_id, lease)
    with sessions() as session:
        assert jobs.get_job(session, job_id).state == "canceled"


def test_create_job_is_queued_with_its_first_event(sessions: sessionmaker[Session]) -> None:
    earlier = utcnow() - timedelta(hours=2)
    with sessions.begin() as session:
        model_id, dataset_id = add_inputs(session)
        config = {"target": {"metric": "params", "reduction": 0.3}, "seed": 7}
        job = jobs.create_job(
            session, model_id=model_id, dataset_id=dataset_id, config=config, deployment="cams"
        )
        old = jobs.create_job(
            session, model_id=model_id, dataset_id=dataset_id, config={}, created_at=earlier
        )
    with sessions() as session:
        stored = jobs.get_job(session, job.id)
        events = [(e.seq, e.kind, e.data) for e in job_events.events_after(session, job.id)]
        arrival = jobs.queued_in_arrival_order(session, limit=1000)
    assert (stored.state, stored.config, stored.deployment) == ("queued", config, "cams")
    assert (stored.progress, stored.metrics, stored.attempts, stored.enqueued_at) == (
        0,
        {},
        0,
        None,
    )
    assert (stored.model_id, stored.dataset_id) == (model_id, dataset_id)
    assert events == [(1, "state", {"state": "queued"})]
    assert arrival.index(old.id) < arrival.index(job.id)  # backdated: it arrived first


def test_record_artifact_replaces_on_a_second_run(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    job_id = new_job()
    for sha in ("1" * 64, "2" * 64):
        with sessions.begin() as session:
            jobs.record_artifact(
                session, job_id, "model.onnx", sha256=sha, size=3, content_type="x/onnx"
            )
            jobs.record_artifact(
                session, job_id, "report.json", sha256=sha, size=4, content_type="x/json"
            )
    with sessions() as session:
        rows = session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id))
        stored = {(a.name, a.sha256, a.size, a.content_type) for a in rows}
    assert stored == {
        ("model.onnx", "2" * 64, 3, "x/onnx"),
        ("report.json", "2" * 64, 4, "x/json"),
    }


def test_only_one_reconciler_claims_a_resend(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    never_sent, sent = new_job(), new_job(enqueued_at=utcnow() - timedelta(hours=1))
    with sessions() as session:
        read = {job_id: jobs.get_job(session, job_id).enqueued_at for job_id in (never_sent, sent)}
    assert read[never_sent] is None and read[sent] is not None
    now = utcnow()
    for job_id, last_sent in read.items():
        with sessions.begin() as session:  # two reconcilers that read the same row
            assert job_recovery.claim_resend(session, job_id, last_sent, now)
            assert not job_recovery.claim_resend(session, job_id, last_sent, now)
    with sessions.begin() as session:
        assert jobs.request_cancel(session, sent) == "canceled"
        later = utcnow()
        assert not job_recovery.claim_resend(session, sent, now, later)  # no longer queued
