"""Jobs: creation and state transitions, shared by the API, the worker and the reconciler.

Every transition is a compare-and-set UPDATE keyed by job id, so two processes racing on the
same job (a redelivered message, two API replicas reconciling) cannot both win, and replaying
a transition that already happened changes nothing.

The worker that runs a job holds a *lease*: the value of `Job.attempts` that its
`mark_running` produced. Its heartbeats and its final transition are conditioned on that
lease; once the reconciler has handed the job to another delivery, a late writer from the old
run matches no row and learns (return value False) that it must stop.

The functions flush but never commit: callers own the transaction, so a transition and its
event (`infra.store.job_events`) land together. The reconciler's own compare-and-sets are in
`infra.store.job_recovery`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from edgeprune.contracts import jobs as contract
from edgeprune.contracts.report import JobSummary
from infra.store.db import execute_returning
from infra.store.job_events import JobNotFound, append_event
from infra.store.models import Job, JobArtifact, utcnow

# The contract's states as the plain strings the `state` column holds.
QUEUED = contract.JobState.QUEUED.value
RUNNING = contract.JobState.RUNNING.value
SUCCEEDED = contract.JobState.SUCCEEDED.value
FAILED = contract.JobState.FAILED.value
CANCELED = contract.JobState.CANCELED.value
TERMINAL_STATES = frozenset(s.value for s in contract.TERMINAL_STATES)
STATES = tuple(s.value for s in contract.JobState)


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise JobNotFound(job_id)
    return job


def create_job(
    session: Session,
    *,
    model_id: str,
    dataset_id: str,
    config: dict[str, Any],
    deployment: str | None = None,
    created_at: datetime | None = None,
    notes: Sequence[str] = (),
) -> Job:
    """A new `queued` job with its first `state` event. Send it (`JobQueue.enqueue_job`) only
    after the commit, then `mark_enqueued`; a job whose send failed is sent by the reconciler.

    Each of `notes` (what the submitter should know, such as a resize of the dataset's
    images) follows as a `log` event {message}.

    `config` is the request as accepted (target, epochs, batch_size, lr, seed, ...).
    `created_at` (default: now) lets seeders write a history; the arrival order is by it.
    """
    job = Job(
        model_id=model_id,
        dataset_id=dataset_id,
        state=QUEUED,
        config=config,
        deployment=deployment,
        metrics={},
        created_at=created_at or utcnow(),
    )
    session.add(job)
    session.flush()
    append_event(session, job.id, "state", {"state": QUEUED})
    for note in notes:
        append_event(session, job.id, "log", {"message": note})
    return job


def mark_enqueued(session: Session, job_id: str, at: datetime | None = None) -> bool:
    """Record when the job's message was last sent (the reconciler's grace period starts here)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == QUEUED)
        .values(enqueued_at=at or utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Claim:
    """What `mark_running` decided. `lease` is set only when this delivery owns the run."""

    state: str
    lease: int | None = None


def queued_in_arrival_order(session: Session, limit: int = 10) -> list[str]:
    """Ids of queued jobs, first arrived first (the order the API recorded them in)."""
    query = select(Job.id).where(Job.state == QUEUED).order_by(Job.created_at, Job.id).limit(limit)
    return list(session.scalars(query))


def mark_running(session: Session, job_id: str, worker: str) -> Claim:
    """Claim a queued job for this delivery: attempts+1 (the new lease), worker, heartbeat.

    A job that is running already (another delivery holds it) or terminal is left alone; the
    returned Claim has no lease then and the caller must not run the job.
    """
    now = utcnow()
    row = execute_returning(
        session,
        update(Job)
        .where(Job.id == job_id, Job.state == QUEUED)
        .values(
            state=RUNNING,
            attempts=Job.attempts + 1,
            worker=worker,
            heartbeat_at=now,
            started_at=func.coalesce(Job.started_at, now),
            error_type=None,
            error_message=None,
        )
        .returning(Job.attempts),
    )
    if row is None:
        state = session.scalar(select(Job.state).where(Job.id == job_id))
        if state is None:
            raise JobNotFound(job_id)
        return Claim(state=state)
    lease = int(row[0])
    append_event(session, job_id, "state", {"state": RUNNING, "attempt": lease, "worker": worker})
    return Claim(state=RUNNING, lease=lease)


def heartbeat(session: Session, job_id: str, lease: int) -> bool:
    """Refresh the heartbeat; False when this run no longer owns the job (it must stop)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == RUNNING, Job.attempts == lease)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def update_progress(
    session: Session,
    job_id: str,
    lease: int,
    *,
    phase: str | None,
    progress: float,
    metrics: dict[str, Any] | None = None,
) -> bool:
    values: dict[str, Any] = {"phase": phase, "progress": progress}
    if metrics is not None:
        values["metrics"] = metrics
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == RUNNING, Job.attempts == lease)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _finish(
    session: Session,
    job_id: str,
    lease: int | None,
    state: str,
    extra: dict[str, Any],
    event: dict[str, Any],
    from_states: tuple[str, ...] = (RUNNING,),
    *,
    unless_cancel_requested: bool = False,
) -> bool:
    conditions = [Job.id == job_id, Job.state.in_(from_states)]
    if lease is not None:
        conditions.append(Job.attempts == lease)
    if unless_cancel_requested:
        conditions.append(Job.cancel_requested.is_(False))
    result = session.execute(
        update(Job)
        .where(*conditions)
        .values(state=state, finished_at=utcnow(), **extra)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    append_event(session, job_id, "state", {"state": state, **event})
    return True


def mark_succeeded(session: Session, job_id: str, lease: int | None, summary: JobSummary) -> bool:
    """Finish the run as succeeded, unless a cancel was requested: the condition is in the
    UPDATE itself, so a `request_cancel` racing with it either lands first (no success; the
    worker then cancels) or finds the job succeeded (the API answers 409), never both."""
    return _finish(
        session,
        job_id,
        lease,
        SUCCEEDED,
        {"summary": summary, "progress": 1.0, "error_type": None, "error_message": None},
        {"summary": summary},
        unless_cancel_requested=True,
    )


def mark_failed(
    session: Session,
    job_id: str,
    lease: int | None,
    error_type: str,
    error_message: str,
    *,
    from_states: tuple[str, ...] = (RUNNING,),
) -> bool:
    """Fail the job. `error_message` is shown to clients: one line, never a traceback."""
    message = " ".join(error_message.split())[:2000] or error_type
    return _finish(
        session,
        job_id,
        lease,
        FAILED,
        {"error_type": error_type, "error_message": message},
        {"error_type": error_type, "error_message": message},
        from_states,
    )


def mark_canceled(
    session: Session,
    job_id: str,
    lease: int | None = None,
    *,
    from_states: tuple[str, ...] = (RUNNING,),
) -> bool:
    """End a job as canceled: its worker honouring `cancel_requested` (with its lease), or
    `request_cancel` on a job no worker holds yet."""
    return _finish(session, job_id, lease, CANCELED, {}, {}, from_states)


def request_cancel(session: Session, job_id: str) -> str:
    """Cancel a job and return its state afterwards.

    A queued job is canceled at once (no worker will run it: the task sees a terminal job and
    returns). A running job gets `cancel_requested`; its worker notices within one training
    step and marks it canceled. A terminal job is left as it is (the API answers 409).
    """
    if mark_canceled(session, job_id, from_states=(QUEUED,)):
        return CANCELED
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.state == RUNNING, Job.cancel_requested.is_(False))
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount:  # type: ignore[attr-defined]
        append_event(session, job_id, "log", {"message": "cancel requested"})
    state = session.scalar(select(Job.state).where(Job.id == job_id))
    if state is None:
        raise JobNotFound(job_id)
    return state


def cancel_requested(session: Session, job_id: str) -> bool:
    return bool(session.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


def record_artifact(
    session: Session, job_id: str, name: str, *, sha256: str, size: int, content_type: str
) -> None:
    """Record a published artifact (`model.onnx`, `report.json`, ...) of the job, stored
    content-addressed already. Keyed by (job id, name): a second run replaces, never adds."""
    session.merge(
        JobArtifact(job_id=job_id, name=name, sha256=sha256, size=size, content_type=content_type)
    )
    session.flush()
