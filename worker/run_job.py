"""One delivery of a compression job: claim it, run the engine, publish or record the failure.

Safe to run any number of times for the same job id: a terminal or already-claimed job is
left alone, every write is conditioned on this delivery's lease, artifacts are
content-addressed (the same bytes land on the same key) and their rows are keyed by
(job id, name).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.orm import Session

from infra.store import deployments, jobs
from infra.store.models import Dataset, Job, Model
from pruning.config import Cancelled
from pruning.pipeline import CompressResult, run_compression
from pruning.watchdog import StallWatchdog, stall_message
from worker.context import WorkerContext
from worker.failures import (
    KNOWN_ERRORS,
    OUT_OF_MEMORY,
    TRAINING_STALLED,
    LeaseLost,
    is_out_of_memory,
    one_line,
    oom_message,
    replace_process,
)
from worker.hooks import Checkpoints, Heartbeat, Lease, run_hooks
from worker.job_inputs import compress_request
from worker.summary import summarize

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".onnx": "application/octet-stream",
    ".pt": "application/octet-stream",
    ".json": "application/json",
    ".png": "image/png",
}


def attempt_prefix(job_id: str) -> str:
    return f"edgeprune-{job_id}-"


def remove_dead_attempts(job_id: str) -> list[Path]:
    """Temporary folders of earlier attempts of `job_id` (call only while holding its lease)."""
    stale = list(Path(tempfile.gettempdir()).glob(f"{attempt_prefix(job_id)}*"))
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    if stale:
        log.info("job %s: removed %d folder(s) of dead attempts", job_id, len(stale))
    return stale


class JobRun:
    """One delivery of one job: claim it, run the engine under a heartbeat and a stall
    watchdog, then publish the artifacts or record how it ended."""

    def __init__(self, ctx: WorkerContext, job_id: str, worker: str) -> None:
        self.ctx = ctx
        self.job_id = job_id
        self.worker = worker
        self.claimed = False  # True once this delivery holds the job's lease

    def execute(self) -> str:
        """Run the job; returns the state it ended in (or the state that made us skip it)."""
        with self.ctx.sessions.begin() as session:
            claim = jobs.mark_running(session, self.job_id, self.worker)
        if claim.lease is None:
            log.info("job %s is %s: nothing to do", self.job_id, claim.state)
            return claim.state
        self.claimed = True
        lease = Lease(self.job_id, claim.lease)
        # This delivery holds the lease, so any folder of an earlier attempt of this job
        # belongs to a dead process (SIGKILL, OOM): nothing else will remove it.
        remove_dead_attempts(self.job_id)
        with self.ctx.sessions() as session:
            job = jobs.get_job(session, self.job_id)
            model = session.get(Model, job.model_id)
            dataset = session.get(Dataset, job.dataset_id)
        with (
            Heartbeat(self.ctx.sessions, lease, self.ctx.settings.heartbeat_interval_s),
            tempfile.TemporaryDirectory(prefix=attempt_prefix(self.job_id)) as tmp,
        ):
            return self._run(job, model, dataset, lease, Path(tmp))

    def _run(
        self, job: Job, model: Model | None, dataset: Dataset | None, lease: Lease, tmp: Path
    ) -> str:
        hooks, checkpoints, cancel = run_hooks(self.ctx.sessions, self.ctx.storage, lease, tmp)

        def stalled(seconds: float) -> None:
            message = stall_message(seconds)
            log.critical("job %s: %s; replacing this worker process", self.job_id, message)
            self._finish(lease, jobs.FAILED, checkpoints, TRAINING_STALLED, message)
            shutil.rmtree(tmp, ignore_errors=True)
            replace_process()

        try:
            if model is None or dataset is None:
                raise ValueError("the job's model or dataset no longer exists")
            request = compress_request(self.ctx, job, model, dataset, tmp)
            with StallWatchdog(self.ctx.settings.stall_timeout_s, stalled) as watchdog:
                result = run_compression(request, tmp / "out", watchdog.watch(hooks))
            if lease.lost.is_set():
                raise LeaseLost()
            # The engine's last check was before exporting; a cancel asked for since then is
            # honoured here, before any artifact is stored.
            if cancel.now():
                raise Cancelled("canceled before publishing")
            self._publish(job, lease, result)
        except LeaseLost:
            return "superseded"
        except Cancelled:
            if lease.lost.is_set():
                return "superseded"
            return self._finish(lease, jobs.CANCELED, checkpoints)
        except SoftTimeLimitExceeded:
            limit = self.ctx.settings.job_time_limit_s
            message = f"the job ran longer than {limit} s"
            return self._finish(lease, jobs.FAILED, checkpoints, "TimeLimitExceeded", message)
        except KNOWN_ERRORS as exc:
            return self._finish(lease, jobs.FAILED, checkpoints, type(exc).__name__, one_line(exc))
        except Exception as exc:
            if is_out_of_memory(exc):
                log.warning("job %s ran out of memory: %s", self.job_id, one_line(exc))
                message = oom_message(exc)
                return self._finish(lease, jobs.FAILED, checkpoints, OUT_OF_MEMORY, message)
            # Unexpected: the operator gets the traceback in the worker log, the client a
            # one-line message; the worker process carries on with the next job.
            log.exception("job %s failed", self.job_id)
            return self._finish(lease, jobs.FAILED, checkpoints, type(exc).__name__, one_line(exc))
        checkpoints.discard()
        return jobs.SUCCEEDED

    def _publish(self, job: Job, lease: Lease, result: CompressResult) -> None:
        stored = {name: self.ctx.storage.put_file(path) for name, path in result.artifacts.items()}
        with self.ctx.sessions.begin() as session:
            if not jobs.mark_succeeded(session, self.job_id, lease.value, summarize(result.report)):
                # A cancel that arrived during the upload wins over success (the API already
                # answered 202 "canceling"); otherwise another delivery owns the job.
                if jobs.cancel_requested(session, self.job_id):
                    raise Cancelled("canceled while publishing")
                lease.lost.set()
                raise LeaseLost()
            self._record_artifacts(session, stored, result)
            if job.deployment:
                percent = int(job.config.get("rollout_percent", deployments.FULL))
                deployments.promote_finished_job(session, job.deployment, self.job_id, percent)

    def _record_artifacts(
        self, session: Session, stored: dict[str, tuple[str, int]], result: CompressResult
    ) -> None:
        for name, (sha256, size) in stored.items():
            content_type = CONTENT_TYPES.get(
                result.artifacts[name].suffix, "application/octet-stream"
            )
            # Keyed by (job id, name): a second run replaces instead of duplicating.
            jobs.record_artifact(
                session, self.job_id, name, sha256=sha256, size=size, content_type=content_type
            )

    def _finish(
        self,
        lease: Lease,
        state: str,
        checkpoints: Checkpoints,
        error_type: str = "",
        message: str = "",
    ) -> str:
        """Record a canceled or failed end; the checkpoint goes (nothing will resume it)."""
        with self.ctx.sessions.begin() as session:
            if state == jobs.CANCELED:
                done = jobs.mark_canceled(session, self.job_id, lease.value)
            else:
                done = jobs.mark_failed(session, self.job_id, lease.value, error_type, message)
        if not done:
            return "superseded"
        checkpoints.discard()
        return state


def run_next_job(ctx: WorkerContext, job_id: str, worker: str) -> str:
    """What one `edgeprune.run_job` message does; returns the state the run ended in.

    The message is a wake-up (DESIGN.md: the database is the source of truth): the worker
    runs the job that arrived first among those still queued, which is `job_id` unless an
    older one waits. Messages can reach the broker in another order than their jobs were
    recorded (concurrent submissions commit and send independently); one message per job
    and one job per message still runs every job, in arrival order.
    """
    with ctx.sessions() as session:
        candidates = jobs.queued_in_arrival_order(session)
    outcome = ""
    for candidate in dict.fromkeys([*candidates, job_id]):
        run = JobRun(ctx, candidate, worker)
        outcome = run.execute()
        if run.claimed:  # another worker may have taken a candidate first: try the next
            return outcome
    return outcome
