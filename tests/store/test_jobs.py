"""Job-state transitions and the per-job event log, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from infra.store import jobs
from infra.store.models import utcnow


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
                    seq = jobs.append_event(session, job_id, "log", {"writer": n, "i": i})
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
    total = threads * per_thread
    assert sorted(handed_out) == list(range(1, total + 1))
    with sessions() as session:
        stored = [e.seq for e in jobs.events_after(session, job_id, 0, limit=1000)]
        assert stored == list(range(1, total + 1))
        assert jobs.get_job(session, job_id).last_event_seq == total
        # Each writer's own events keep their order.
        events = jobs.events_after(session, job_id, 0, limit=1000)
    for n in range(threads):
        mine = [e.data["i"] for e in events if e.data["writer"] == n]
        assert mine == list(range(per_thread))


def test_seqs_are_per_job_and_rollback_leaves_no_gap(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    a, b = new_job(), new_job()
    with sessions.begin() as session:
        assert jobs.append_event(session, a, "log", {}) == 1
        assert jobs.append_event(session, b, "log", {}) == 1
    with pytest.raises(RuntimeError), sessions.begin() as session:
        assert jobs.append_event(session, a, "log", {}) == 2
        raise RuntimeError("abort the transaction")
    with sessions.begin() as session:
        assert jobs.append_event(session, a, "log", {}) == 2
        assert [e.seq for e in jobs.events_after(session, a, 1)] == [2]
    with pytest.raises(jobs.JobNotFound), sessions.begin() as session:
        jobs.append_event(session, "job_missing", "log", {})


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
        states = [e.data["state"] for e in jobs.events_after(session, job_id) if e.kind == "state"]
    assert states == ["running", "succeeded"]


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
        logs = [e.data for e in jobs.events_after(session, running) if e.kind == "log"]
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
        assert not jobs.requeue_stale(session, job_id, lease, cutoff)  # fresh heartbeat
        assert jobs.requeue_stale(session, job_id, lease, utcnow() + timedelta(seconds=1))
        assert not jobs.requeue_stale(session, job_id, lease, utcnow() + timedelta(seconds=1))
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
