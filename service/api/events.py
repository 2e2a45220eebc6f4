"""The job event streams behind `GET /v1/jobs/{id}/events` and `GET /v1/jobs/events` (SSE).

Events are read from the job_events table, never from process memory, so any API replica
can serve any job's stream and a reconnecting client resumes exactly where it stopped
(`Last-Event-ID` = the last `seq` it saw). The table is polled; the stream ends after the
job's terminal `state` event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import anyio
import anyio.to_thread
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from sse_starlette import ServerSentEvent

from infra.store import job_events
from infra.store import jobs as job_store
from infra.store.models import Job, JobEvent

POLL_INTERVAL_S = 0.5
BATCH = 500


def _read(factory: sessionmaker[Session], job_id: str, after: int) -> tuple[str, list[JobEvent]]:
    with factory() as session:
        # State first, events second: if the job was terminal before the events were read,
        # its terminal event is in this batch (the store commits the two together).
        state = session.scalar(select(Job.state).where(Job.id == job_id)) or job_store.FAILED
        return state, job_events.events_after(session, job_id, after, BATCH)


def is_terminal_event(event: JobEvent) -> bool:
    return event.kind == "state" and event.data.get("state") in job_store.TERMINAL_STATES


async def job_event_stream(
    factory: sessionmaker[Session],
    job_id: str,
    after: int,
    *,
    poll_interval_s: float = POLL_INTERVAL_S,
) -> AsyncIterator[ServerSentEvent]:
    cursor = after
    while True:
        state, events = await anyio.to_thread.run_sync(_read, factory, job_id, cursor)
        for event in events:
            cursor = event.seq
            yield ServerSentEvent(
                data=json.dumps(event.data, separators=(",", ":")),
                event=event.kind,
                id=str(event.seq),
            )
            if is_terminal_event(event):
                return
        if len(events) == BATCH:
            continue  # more to replay: no pause
        if state in job_store.TERMINAL_STATES:
            return  # the client had everything, terminal event included
        await anyio.sleep(poll_interval_s)


def _read_feed(factory: sessionmaker[Session], after: int) -> list[JobEvent]:
    with factory() as session:
        query = select(JobEvent).where(JobEvent.id > after).order_by(JobEvent.id).limit(BATCH)
        return list(session.scalars(query))


def latest_event_id(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.max(JobEvent.id))) or 0)


async def job_change_feed(
    factory: sessionmaker[Session],
    after: int,
    *,
    follow: bool = True,
    poll_interval_s: float = POLL_INTERVAL_S,
) -> AsyncIterator[ServerSentEvent]:
    """Every job's events as light `job` notifications (`id:` the event's row id), for
    listings that refresh when anything changes. It is a change feed, not a log: a
    PostgreSQL row id can commit after a higher one, so a listener refreshes from the REST
    API rather than rebuilding state from the feed. It never ends; clients disconnect."""
    cursor = after
    while True:
        events = await anyio.to_thread.run_sync(_read_feed, factory, cursor)
        for event in events:
            cursor = event.id
            note = {
                "job_id": event.job_id,
                "seq": event.seq,
                "kind": event.kind,
                "state": event.data.get("state"),
                "phase": event.data.get("phase"),
            }
            yield ServerSentEvent(
                data=json.dumps(note, separators=(",", ":")), event="job", id=str(event.id)
            )
        if len(events) < BATCH:
            if not follow:
                return
            await anyio.sleep(poll_interval_s)
