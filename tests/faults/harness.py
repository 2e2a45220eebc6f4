"""Pieces the fault tests start, break and restart: the worker stack, an API process, a
private Redis, and an SSE reader that remembers what it saw.

Every process is started in its own session and stopped by its own pid (group) in the
tests' `finally` blocks; every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from infra.queue import JobQueue
from infra.settings import Settings
from infra.storage import ArtifactStore
from infra.store import job_events, jobs
from infra.store.models import Job, JobArtifact
from tests.integration.workerproc import WorkerProcess, wait_for

TERMINAL = {"succeeded", "failed", "canceled"}

# Short timings so that a lost worker or message is noticed within seconds.
FAST_SETTINGS = {
    "heartbeat_interval_s": "0.5",
    "heartbeat_timeout_s": "4",
    "reconcile_interval_s": "0.5",
    "enqueue_grace_s": "2",
}


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _reap(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left, and wait for the leader."""
    if process.poll() is None:
        _signal_group(process, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    _signal_group(process, signal.SIGKILL)
    if process.poll() is None:
        process.wait(timeout=30)


def child_pids(pid: int) -> set[int]:
    """Direct children of `pid` (a Celery worker's pool processes)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return {int(p) for p in path.read_text().split()}
    except OSError:
        return set()


@dataclass
class FaultStack:
    """A database of its own, a broker, an artifact store and the workers started on them."""

    settings: Settings
    env: dict[str, str]
    sessions: sessionmaker[Session]
    storage: ArtifactStore
    queue: JobQueue
    tmp: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def start_worker(self, queues: str = "gpu") -> WorkerProcess:
        worker = WorkerProcess(self.env, self.tmp / f"worker-{len(self.workers)}.log", queues)
        self.workers.append(worker)
        return worker

    def submit(self, job_id: str) -> None:
        """What POST /v1/jobs does after recording the job (`jobs.create_job`): the send."""
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

    def artifact_rows(self, job_id: str) -> list[JobArtifact]:
        with self.sessions() as session:
            return list(session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id)))

    def wait_state(self, job_id: str, states: set[str], timeout: float) -> str:
        def reached() -> str | None:
            state = self.job(job_id).state
            return state if state in states else None

        try:
            return str(wait_for(reached, timeout, f"job {job_id} to reach {states}"))
        except AssertionError:
            logs = "\n".join(w.log() for w in self.workers)
            raise AssertionError(
                f"job stuck in {self.job(job_id).state}; worker logs:\n{logs}"
            ) from None

    def wait_event(
        self, job_id: str, what: str, timeout: float,
        match: Callable[[str, dict[str, Any]], bool],
    ) -> None:  # fmt: skip
        def seen() -> bool:
            return any(match(kind, data) for _, kind, data in self.events(job_id))

        wait_for(seen, timeout, what, interval=0.05)


class RedisServer:
    """A private, non-persistent redis-server on its own port (never the shared one)."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        log.close()
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)

        def answers() -> bool:
            with contextlib.suppress(redis.RedisError):
                return bool(client.ping())
            return False

        wait_for(answers, 20, f"redis-server on port {self.port}")
        client.close()

    def kill(self) -> None:
        """SIGKILL: what a crashed or rescheduled Redis container looks like."""
        if self.process is not None:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None


class ApiProcess:
    """`edgeprune api` in a subprocess on a fixed port (so it can be restarted on it)."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edgeprune", "api", "--host", "127.0.0.1",
                 "--port", str(self.port), "--log-level", "warning"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        process = self.process

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"the API exited with {process.returncode}:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
            return False

        wait_for(healthy, timeout, f"the API on port {self.port}")

    def kill(self) -> None:
        if self.process is not None:
            _signal_group(self.process, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            _reap(self.process)
            self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


@dataclass
class SseEvent:
    id: int
    event: str
    data: dict[str, Any]


def read_sse(response: httpx.Response) -> Iterator[SseEvent]:
    """Parse a text/event-stream body into events (comments and pings skipped)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in response.iter_lines():
        if line == "":
            if data and "id" in fields:
                yield SseEvent(int(fields["id"]), fields.get("event", "message"),
                               json.loads("\n".join(data)))  # fmt: skip
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        else:
            fields[name] = value
