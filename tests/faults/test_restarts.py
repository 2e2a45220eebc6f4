"""Restarting the pieces around a job: the API (with an SSE client following the job) and
Redis (with jobs waiting in it). Jobs carry on or are re-sent from the database; no event is
missed or repeated."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from infra.store import tokens
from service.reconciler import Reconciler
from tests.faults.conftest import MakeStack
from tests.faults.harness import TERMINAL, ApiProcess, RedisServer, SseEvent, read_sse
from tests.integration.workerproc import wait_for
from tests.support.net import free_port
from tests.worker.tinyjob import add_tiny_job

pytestmark = pytest.mark.integration

STREAM_TIMEOUT = httpx.Timeout(10.0, read=30.0)  # the server pings every 15 s


def _follow(
    api: ApiProcess, token: str, job_id: str, seen: list[SseEvent], deadline: float,
    stop: Callable[[SseEvent], bool] = lambda event: False,
) -> None:  # fmt: skip
    """Read the job's stream into `seen`, resuming after its last event (Last-Event-ID).

    Returns when `stop(event)` is true, when the server ends the stream (after the terminal
    event) or when the connection breaks."""
    headers = {"Authorization": f"Bearer {token}"}
    if seen:
        headers["Last-Event-ID"] = str(seen[-1].id)
    url = f"{api.url}/v1/jobs/{job_id}/events"
    try:
        with httpx.stream("GET", url, headers=headers, timeout=STREAM_TIMEOUT) as response:
            assert response.status_code == 200, response.read()
            for event in read_sse(response):
                seen.append(event)
                if stop(event):
                    return
                assert time.monotonic() < deadline, "the event stream did not end in time"
    except httpx.TransportError:
        return  # the server went away mid-stream


def _in_structure_learning(event: SseEvent) -> bool:
    return event.data.get("phase") == "structure_learning"


def test_api_restart_mid_job_loses_no_event_and_leaves_the_job_alone(
    fault_stack: MakeStack, tmp_path: Path
) -> None:
    stack = fault_stack()
    with stack.sessions.begin() as session:
        _, token = tokens.create_token(session, "faults")
    job_id = add_tiny_job(
        stack.sessions, stack.storage, tmp_path / "in",
        structure_epochs=3, finetune_epochs=2, batch_size=8,
    )  # fmt: skip
    api = ApiProcess(stack.env, free_port(), tmp_path / "api.log")
    deadline = time.monotonic() + 240
    try:
        api.start()
        stack.start_worker()
        stack.submit(job_id)
        seen: list[SseEvent] = []
        # Follow the job until structure learning is under way ...
        _follow(api, token, job_id, seen, deadline, stop=_in_structure_learning)
        assert seen and seen[-1].data.get("phase") == "structure_learning"
        # ... then the API dies under the open stream, stays down a while, and comes back.
        with httpx.stream(
            "GET", f"{api.url}/v1/jobs/{job_id}/events", timeout=STREAM_TIMEOUT,
            headers={"Authorization": f"Bearer {token}", "Last-Event-ID": str(seen[-1].id)},
        ) as response:  # fmt: skip
            api.kill()
            with pytest.raises(httpx.TransportError):
                for event in read_sse(response):
                    seen.append(event)  # sent before the kill: still to be counted once
        last_before = seen[-1].id

        def written_since() -> int:
            return max(seq for seq, _, _ in stack.events(job_id)) - last_before

        wait_for(lambda: written_since() >= 3, 60, "events while the API is down")
        missed = written_since()
        assert stack.job(job_id).state == "running"
        api.start()
        _follow(api, token, job_id, seen, deadline)
        assert stack.wait_state(job_id, TERMINAL, 120) == "succeeded"
    finally:
        api.stop()

    assert missed > 0  # the reconnect had something to replay
    stored = stack.events(job_id)
    assert [e.id for e in seen] == [seq for seq, _, _ in stored]  # each once, in order
    assert [(e.event, e.data) for e in seen] == [(kind, data) for _, kind, data in stored]
    assert seen[-1].event == "state" and seen[-1].data["state"] == "succeeded"
    # The job never noticed: one delivery, never requeued.
    assert stack.job(job_id).attempts == 1
    assert [d["state"] for _, kind, d in stored if kind == "state"] == [
        "queued", "running", "succeeded",
    ]  # fmt: skip


def test_redis_restart_loses_the_queue_and_the_reconciler_resends_it(
    fault_stack: MakeStack, tmp_path: Path
) -> None:
    server = RedisServer(free_port(), tmp_path / "redis")
    stack = fault_stack(broker_url=server.url)
    reconciler = Reconciler(stack.sessions, stack.queue, stack.settings)  # as in the API
    try:
        server.start()
        job_ids = [add_tiny_job(stack.sessions, stack.storage, tmp_path / f"in{i}") for i in (1, 2)]
        for job_id in job_ids:
            stack.submit(job_id)
        sent_at = {job_id: stack.job(job_id).enqueued_at for job_id in job_ids}
        assert stack.queue.snapshot().ready == frozenset(job_ids)

        server.kill()  # no worker has taken them yet; Redis keeps nothing on disk
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.dbsize() == 0  # the queue is gone; the database still says "queued"
        client.close()
        assert {stack.job(job_id).state for job_id in job_ids} == {"queued"}

        # The reconciler's broker client connected before the restart; then a worker starts.
        reconciler.start()
        stack.start_worker()
        for job_id in job_ids:
            assert stack.wait_state(job_id, TERMINAL, 150) == "succeeded"
            job = stack.job(job_id)
            assert job.attempts == 1 and len(stack.artifact_rows(job_id)) == 7
            first_send = sent_at[job_id]
            assert job.enqueued_at and first_send and job.enqueued_at > first_send  # re-sent
    finally:
        reconciler.stop()
        while stack.workers:
            stack.workers.pop().stop()  # before their broker goes
        server.kill()
