"""How a running job talks to the job store: heartbeat, progress events, cancel, checkpoints.

Each piece is bound to the job's *lease* (see infra/store/jobs.py). When a write finds the
lease gone, the reconciler has handed the job to another delivery; the piece sets `lost`, the
cancel check then answers True, and the engine stops at the next training step without this
run writing anything further.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import torch
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from edgeprune.contracts.json_values import json_safe
from infra.storage import ArtifactStore
from infra.store import job_events, jobs
from pruning.config import ProgressEvent, RunHooks
from worker import start_deadline

log = logging.getLogger(__name__)

# At most this many per-step progress events per second reach the database; phase changes
# and epoch ends are always written.
STEP_EVENTS_PER_SECOND = 2.0
CANCEL_CHECK_INTERVAL_S = 1.0


def checkpoint_key(job_id: str) -> str:
    return f"jobs/{job_id}/checkpoint.pt"


class Lease:
    """The run's claim on the job; `lost` is set once any write finds it gone."""

    def __init__(self, job_id: str, value: int) -> None:
        self.job_id = job_id
        self.value = value
        self.lost = threading.Event()


class Heartbeat:
    """A daemon thread writing `heartbeat_at` every `interval` seconds while the job runs."""

    def __init__(self, sessions: sessionmaker[Session], lease: Lease, interval: float) -> None:
        self.sessions = sessions
        self.lease = lease
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgeprune-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        start_deadline.disarm()  # the run has started: the heartbeat watches it from here
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.sessions.begin() as session:
                    alive = jobs.heartbeat(session, self.lease.job_id, self.lease.value)
            except OperationalError as exc:
                # The DB is briefly unreachable: keep trying; the reconciler's timeout is
                # many intervals long.
                log.warning("heartbeat of %s failed: %s", self.lease.job_id, exc)
                continue
            if not alive:
                log.warning("job %s was handed to another delivery; stopping", self.lease.job_id)
                self.lease.lost.set()
                return


class ProgressWriter:
    """`RunHooks.on_progress`: appends events and keeps the job row's phase/progress/metrics."""

    def __init__(self, sessions: sessionmaker[Session], lease: Lease) -> None:
        self.sessions = sessions
        self.lease = lease
        self._phase: str | None = None
        self._last_step_write = -math.inf

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        is_step = event.step is not None
        phase_changed = event.phase != self._phase
        if (
            is_step
            and not phase_changed
            and now - self._last_step_write < 1 / STEP_EVENTS_PER_SECOND
        ):
            return
        self._phase = event.phase
        if is_step:
            self._last_step_write = now
        kind = "epoch" if not is_step and event.epoch is not None else "progress"
        metrics = None
        if event.metrics:
            metrics = json_safe({**event.metrics, "epoch": event.epoch, "epochs": event.epochs})
        try:
            with self.sessions.begin() as session:
                if not jobs.update_progress(
                    session,
                    self.lease.job_id,
                    self.lease.value,
                    phase=event.phase,
                    progress=float(event.progress),
                    metrics=metrics,
                ):
                    self.lease.lost.set()
                    return
                job_events.append_event(
                    session, self.lease.job_id, kind, json_safe(event.to_json())
                )
        except OperationalError as exc:
            # Losing one progress event is better than losing hours of training.
            log.warning("progress event of %s not written: %s", self.lease.job_id, exc)


class CancelCheck:
    """`RunHooks.should_cancel`: reads `cancel_requested` at most once a second."""

    def __init__(self, sessions: sessionmaker[Session], lease: Lease) -> None:
        self.sessions = sessions
        self.lease = lease
        self._checked_at = -math.inf
        self._requested = False

    def __call__(self) -> bool:
        if self.lease.lost.is_set():
            return True
        now = time.monotonic()
        if now - self._checked_at >= CANCEL_CHECK_INTERVAL_S:
            self._read(now)
        return self._requested

    def now(self) -> bool:
        """Read the flag now, whatever the last read: the last check before publishing."""
        if not self.lease.lost.is_set():
            self._read(time.monotonic())
        return self.lease.lost.is_set() or self._requested

    def _read(self, now: float) -> None:
        self._checked_at = now
        try:
            with self.sessions() as session:
                self._requested = jobs.cancel_requested(session, self.lease.job_id)
        except OperationalError as exc:
            log.warning("cancel check of %s failed: %s", self.lease.job_id, exc)


class Checkpoints:
    """`RunHooks.save_checkpoint` / `load_checkpoint` on the artifact store, per job."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        storage: ArtifactStore,
        lease: Lease,
        workdir: Path,
    ) -> None:
        self.sessions = sessions
        self.storage = storage
        self.lease = lease
        self.workdir = workdir
        self.key = checkpoint_key(lease.job_id)

    def save(self, state: dict[str, Any]) -> None:
        # Re-check the lease first so a superseded run never overwrites the new run's state.
        with self.sessions.begin() as session:
            if not jobs.heartbeat(session, self.lease.job_id, self.lease.value):
                self.lease.lost.set()
                return
        local = self.workdir / "checkpoint.pt"
        torch.save(state, local)
        self.storage.put_key(self.key, local)
        local.unlink(missing_ok=True)
        where = {"phase": state.get("phase"), "epoch": state.get("epoch")}
        with self.sessions.begin() as session:
            job_events.append_event(
                session,
                self.lease.job_id,
                "log",
                {
                    "message": f"checkpoint saved after {where['phase']} epoch {where['epoch']}",
                    "checkpoint": where,
                },
            )

    def load(self) -> dict[str, Any] | None:
        local = self.storage.get_key_to_path(self.key, self.workdir / "resume.pt")
        if local is None:
            return None
        # weights_only: a checkpoint is data (tensors and plain values), never code.
        state: dict[str, Any] = torch.load(local, map_location="cpu", weights_only=True)
        local.unlink(missing_ok=True)
        where = {"phase": state.get("phase"), "epoch": state.get("epoch")}
        with self.sessions.begin() as session:
            job_events.append_event(
                session,
                self.lease.job_id,
                "log",
                {
                    "message": f"resumed from {where['phase']} epoch {where['epoch']}",
                    "resumed": where,
                },
            )
        return state

    def discard(self) -> None:
        self.storage.delete_key(self.key)


def run_hooks(
    sessions: sessionmaker[Session], storage: ArtifactStore, lease: Lease, workdir: Path
) -> tuple[RunHooks, Checkpoints, CancelCheck]:
    checkpoints = Checkpoints(sessions, storage, lease, workdir)
    cancel = CancelCheck(sessions, lease)
    hooks = RunHooks(
        on_progress=ProgressWriter(sessions, lease),
        should_cancel=cancel,
        save_checkpoint=checkpoints.save,
        load_checkpoint=checkpoints.load,
    )
    return hooks, checkpoints, cancel
