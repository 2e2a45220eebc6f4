"""The reconciler's writes: sending a lost queued job again, requeueing a silent run.

Both are compare-and-sets on what the reconciler read, so several API replicas may reconcile
side by side and each lost job is acted on once. Functions flush; the caller commits.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from infra.store.job_events import append_event
from infra.store.jobs import QUEUED, RUNNING
from infra.store.models import Job, utcnow


def claim_resend(session: Session, job_id: str, last_sent: datetime | None, at: datetime) -> bool:
    """Move a queued job's `enqueued_at` from `last_sent` (as the caller read it) to `at`, iff
    nobody moved it meanwhile: of several reconcilers that find it lost, one sends it again."""
    unchanged = Job.enqueued_at.is_(None) if last_sent is None else Job.enqueued_at == last_sent
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == QUEUED, unchanged)
        .values(enqueued_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def requeue_stale(session: Session, job_id: str, lease: int, stale_before: datetime) -> bool:
    """Hand a running job whose worker went silent back to the queue.

    Conditioned on the lease and on the heartbeat still being stale, so a worker that woke up
    and beat in the meantime keeps its job, and two reconcilers cannot both requeue it.
    """
    result = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.state == RUNNING,
            Job.attempts == lease,
            func.coalesce(Job.heartbeat_at, Job.started_at) < stale_before,
        )
        .values(state=QUEUED, worker=None, heartbeat_at=None, enqueued_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    append_event(
        session,
        job_id,
        "state",
        {"state": QUEUED, "reason": "worker stopped sending heartbeats", "attempt": lease},
    )
    return True
