"""A job's event log: what SSE clients replay (`GET /v1/jobs/{id}/events`).

Events are numbered 1, 2, 3 ... per job (`seq`, the SSE event id), without gaps, and commit
in order, so a client resuming from `Last-Event-ID` never skips one. Kinds and their data:

- `state`: {state}, plus `attempt` and `worker` when a run starts, `summary` on success,
  `error_type` and `error_message` on failure, `reason` and `attempt` on a requeue;
- `progress` and `epoch` (an epoch's end): `ProgressEvent.to_json()` (phase, progress,
  epoch, epochs, step, steps, metrics, channels, message);
- `log`: {message} plus `checkpoint` or `resumed` ({phase, epoch}); at creation, a note
  for the submitter (e.g. the dataset's images resized to the model's input), {message} only.

The job transitions in `infra.store.jobs` append their `state` events here in the same
transaction; the worker appends progress and logs. Functions flush; the caller commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from infra.store.db import execute_returning
from infra.store.models import Job, JobEvent


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


def append_event(session: Session, job_id: str, kind: str, data: dict[str, Any]) -> int:
    """Append an event to the job's log and return its seq (1, 2, 3 ... per job).

    The UPDATE of `jobs.last_event_seq` comes first: it takes the job row's lock (PostgreSQL)
    or the database write lock (SQLite) until commit, so concurrent appends are serialised,
    seqs have no gaps, and seq n+1 can never become visible before seq n (SSE readers that
    resume from Last-Event-ID never skip an event).
    """
    row = execute_returning(
        session,
        update(Job)
        .where(Job.id == job_id)
        .values(last_event_seq=Job.last_event_seq + 1)
        .returning(Job.last_event_seq),
    )
    if row is None:
        raise JobNotFound(job_id)
    seq = int(row[0])
    session.add(JobEvent(job_id=job_id, seq=seq, kind=kind, data=data))
    session.flush()
    return seq


def events_after(
    session: Session, job_id: str, after_seq: int = 0, limit: int = 500
) -> list[JobEvent]:
    """Events with seq > after_seq, oldest first (SSE replay from Last-Event-ID)."""
    stmt = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.seq > after_seq)
        .order_by(JobEvent.seq)
        .limit(limit)
    )
    return list(session.scalars(stmt))
