"""A real Celery worker process against the real Redis and PostgreSQL.

A tiny job runs end to end; a worker SIGKILLed mid-job is recovered by the heartbeat and the
reconciler and the job resumes from its epoch checkpoint; a running job is canceled promptly.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from infra.queue import JobQueue, entity_id_from_message
from infra.settings import Settings
from infra.storage import ArtifactStore
from infra.store import deployments, job_events, jobs, uploads
from infra.store.db import make_engine, make_session_factory
from infra.store.models import Job, JobArtifact, Model
from service.reconciler import Reconciler
from tests.conftest import migrated_pg_database
from tests.integration.workerproc import WorkerProcess, wait_for
from tests.worker.tinyjob import add_tiny_job, write_inputs

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    sessions: sessionmaker[Session]
    storage: ArtifactStore
    queue: JobQueue
    tmp: Path
    workers: list[WorkerProcess]

    def start_worker(self, queues: str = "gpu") -> WorkerProcess:
        worker = WorkerProcess(self.env, self.tmp / f"worker-{len(self.workers)}.log", queues)
        self.workers.append(worker)
        return worker

    def submit(self, job_id: str) -> None:
        self.queue.enqueue_job(job_id)
        with self.sessions.begin() as session:
            jobs.mark_enqueued(session, job_id)

    def job(self, job_id: str) -> Job:
        with self.sessions() as session:
            return jobs.get_job(session, job_id)

    def events(self, job_id: str) -> list[tuple[int, str, dict[str, Any]]]:
        with self.sessions() as session:
            return [
                (e.seq, e.kind, e.data) for e in job_events.events_after(session, job_id, 0, 10_000)
            ]

    def wait_state(self, job_id: str, states: set[str], timeout: float) -> str:
        def done() -> str | None:
            state = self.job(job_id).state
            return state if state in states else None

        try:
            return str(wait_for(done, timeout, f"job {job_id} to reach {states}"))
        except AssertionError:
            logs = "\n".join(w.log() for w in self.workers)
            raise AssertionError(
                f"job stuck in {self.job(job_id).state}; worker logs:\n{logs}"
            ) from None


@pytest.fixture
def stack(redis_url: str, tmp_path: Path, unique_suffix: str) -> Iterator[Stack]:
    # A database of its own: the reconciler acts on every queued job it can see.
    with migrated_pg_database("edgeprune_worker") as pg_url:
        yield from _stack_on(pg_url, redis_url, tmp_path, unique_suffix)


def _stack_on(pg_url: str, redis_url: str, tmp_path: Path, unique_suffix: str) -> Iterator[Stack]:
    values = {
        "database_url": pg_url,
        "broker_url": redis_url,
        "artifacts_url": str(tmp_path / "artifacts"),
        "queue_name": f"gpu-it-{unique_suffix}",
        "inspect_queue_name": f"inspect-it-{unique_suffix}",
        "heartbeat_interval_s": "0.5",
        "heartbeat_timeout_s": "4",
        "reconcile_interval_s": "0.5",
        "enqueue_grace_s": "2",
        "data_dir": str(tmp_path / "data"),
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.update({f"EDGEPRUNE_{k.upper()}": v for k, v in values.items()})
    settings = Settings.model_validate(values)
    engine = make_engine(pg_url)
    queue = JobQueue(settings)
    stack = Stack(
        settings, env, make_session_factory(engine), ArtifactStore(values["artifacts_url"]),
        queue, tmp_path, [],
    )  # fmt: skip
    try:
        yield stack
    finally:
        for worker in stack.workers:
            worker.stop()
        queue.close()
        engine.dispose()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{unique_suffix}*"):
            client.delete(key)


def _artifact_rows(stack: Stack, job_id: str) -> list[JobArtifact]:
    with stack.sessions() as session:
        return list(session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id)))


def _assert_published(stack: Stack, job_id: str) -> None:
    rows = _artifact_rows(stack, job_id)
    assert sorted(r.name for r in rows) == [
        "baseline.onnx", "channels.png", "history.png", "model.onnx", "pruned.pt",
        "report.json", "structure.json",
    ]  # fmt: skip
    for row in rows:
        with stack.storage.open(row.sha256) as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == row.sha256


def test_job_and_inspection_run_end_to_end(stack: Stack, unique_suffix: str) -> None:
    deployment = f"edge-{unique_suffix}"
    job_id = add_tiny_job(stack.sessions, stack.storage, stack.tmp / "in", deployment=deployment)
    checkpoint, _ = write_inputs(stack.tmp / "in2")
    sha, size = stack.storage.put_file(checkpoint)
    with stack.sessions.begin() as session:
        model_id = uploads.add_model(
            session, name="upload", arch="vgg11", num_classes=10, input_shape=[1, 32, 32],
            filename="up.pt", format="pt", sha256=sha, size=size,
        ).id  # fmt: skip
    stack.start_worker("gpu,inspect")
    stack.queue.enqueue_inspect(model_id)
    stack.submit(job_id)

    assert stack.wait_state(job_id, {"succeeded", "failed", "canceled"}, 180) == "succeeded"
    job = stack.job(job_id)
    assert (
        job.attempts == 1
        and job.summary
        and job.summary["flops_after"] < job.summary["flops_before"]
    )
    events = stack.events(job_id)
    assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1))
    phases = [d["phase"] for _, kind, d in events if kind in ("progress", "epoch")]
    order = ["calibrating", "structure_learning", "pruning", "weight_learning", "exporting"]
    assert sorted(set(phases), key=phases.index) == order
    assert [order.index(p) for p in phases] == sorted(order.index(p) for p in phases)
    _assert_published(stack, job_id)
    with stack.sessions() as session:
        current = deployments.current(session, deployment)
    assert current is not None and current.job_id == job_id

    def inspected() -> Model | None:
        with stack.sessions() as session:
            model = session.get(Model, model_id)
        return model if model is not None and model.status != "pending" else None

    model = wait_for(inspected, 60, "the model inspection")
    assert model.status == "ready" and model.flops and model.params


def test_sigkilled_worker_job_resumes_from_checkpoint(stack: Stack) -> None:
    job_id = add_tiny_job(
        stack.sessions, stack.storage, stack.tmp / "in",
        structure_epochs=4, finetune_epochs=1, batch_size=8,
    )  # fmt: skip
    # The reconciler runs in the API process; here it runs in the test process.
    reconciler = Reconciler(stack.sessions, stack.queue, stack.settings)
    reconciler.start()
    try:
        first = stack.start_worker()
        stack.submit(job_id)

        def checkpointed() -> bool:
            return any("checkpoint" in d for _, kind, d in stack.events(job_id) if kind == "log")

        wait_for(checkpointed, 120, "the first epoch checkpoint")
        first.kill()
        assert stack.job(job_id).state == "running"  # the database still believes it runs
        stack.start_worker()
        assert stack.wait_state(job_id, {"succeeded", "failed", "canceled"}, 180) == "succeeded"
    finally:
        reconciler.stop()
    job = stack.job(job_id)
    assert job.attempts == 2
    events = stack.events(job_id)
    queued = [d for _, kind, d in events if kind == "state" and d["state"] == "queued"]
    assert queued[0] == {"state": "queued"}  # as submitted
    assert len(queued) == 2 and "heartbeat" in queued[1]["reason"]  # requeued once
    resumed = [d["resumed"] for _, kind, d in events if kind == "log" and "resumed" in d]
    assert len(resumed) == 1 and resumed[0]["epoch"] >= 1
    _assert_published(stack, job_id)  # exactly one row per artifact

    # The killed worker's message is still unacknowledged in Redis. When it reappears (kombu
    # restores it once the visibility timeout has passed), it must not run the job a third
    # time: the worker takes it, finds the job succeeded, and acknowledges it.
    assert _restore_unacked(stack, job_id) >= 1
    wait_for(lambda: not stack.queue.broker_has_job(job_id), 60, "the restored message's ack")
    job = stack.job(job_id)
    assert (job.state, job.attempts) == ("succeeded", 2)
    assert stack.events(job_id) == events  # no new state, progress or log event
    _assert_published(stack, job_id)


def _restore_unacked(stack: Stack, job_id: str) -> int:
    """Put the job's unacknowledged messages back in the queue, as kombu's visibility-timeout
    sweep (QoS.restore_visible -> restore_by_tag) does hours after a worker died."""
    restored = 0
    with stack.queue.app.connection_for_write() as conn:
        channel = conn.default_channel
        for tag, raw in channel.client.hgetall(channel.unacked_key).items():
            message = json.loads(raw)[0]
            if entity_id_from_message(message) == job_id:
                channel.qos.restore_by_tag(tag)
                restored += 1
    return restored


def test_cancel_a_running_job(stack: Stack) -> None:
    job_id = add_tiny_job(
        stack.sessions, stack.storage, stack.tmp / "in",
        structure_epochs=30, finetune_epochs=30, batch_size=8,
    )  # fmt: skip
    stack.start_worker()
    stack.submit(job_id)

    def stepping() -> bool:
        return any(d.get("step") for _, kind, d in stack.events(job_id) if kind == "progress")

    wait_for(stepping, 120, "training steps")
    with stack.sessions.begin() as session:
        assert jobs.request_cancel(session, job_id) == "running"
    assert stack.wait_state(job_id, {"canceled", "succeeded", "failed"}, 15) == "canceled"
    assert not _artifact_rows(stack, job_id)
