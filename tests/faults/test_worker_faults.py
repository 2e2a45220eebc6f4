"""The engine runs out of memory, the kernel's OOM killer takes the worker's pool process,
the disk fills up while publishing: each job ends `failed` with its reason, nothing partial
is published, and the same worker goes on to run the next job."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from infra.store import deployments
from infra.store.models import Model
from service.reconciler import WORKER_LOST, Reconciler
from tests.faults.conftest import MakeStack
from tests.faults.harness import TERMINAL, FaultStack, child_pids
from tests.worker.tinyjob import add_tiny_job
from worker.hooks import checkpoint_key

pytestmark = pytest.mark.integration


def _assert_served_next_job(stack: FaultStack, tmp: Path, parent_pid: int) -> None:
    job_id = add_tiny_job(stack.sessions, stack.storage, tmp)
    stack.submit(job_id)
    assert stack.wait_state(job_id, TERMINAL, 180) == "succeeded"
    assert len(stack.artifact_rows(job_id)) == 7
    assert all(w.process.pid == parent_pid for w in stack.workers)  # no worker was restarted


def test_out_of_memory_in_the_engine_fails_the_job_and_the_worker_goes_on(
    fault_stack: MakeStack, tmp_path: Path
) -> None:
    stack = fault_stack()
    job_id = add_tiny_job(stack.sessions, stack.storage, tmp_path / "big")
    # A model registered for 400000×400000 inputs: resizing the 480 training images to that
    # asks the allocator for 307 TB, a real allocation failure (not a mock). Beyond the 128 TB
    # of a 47-bit address space, it fails even where the kernel overcommits memory freely.
    with stack.sessions.begin() as session:
        model_id = stack.job(job_id).model_id
        session.execute(update(Model).where(Model.id == model_id).values(
            input_shape=[1, 400_000, 400_000]))  # fmt: skip
    worker = stack.start_worker()
    stack.submit(job_id)

    assert stack.wait_state(job_id, TERMINAL, 120) == "failed"
    job = stack.job(job_id)
    assert job.error_type == "OutOfMemory"
    assert job.error_message and "out of memory" in job.error_message
    assert "allocate" in job.error_message and "Traceback" not in job.error_message
    assert stack.events(job_id)[-1][2] == {
        "state": "failed", "error_type": "OutOfMemory", "error_message": job.error_message,
    }  # fmt: skip
    assert not stack.artifact_rows(job_id)
    _assert_served_next_job(stack, tmp_path / "next", worker.process.pid)


def _log_with(key: str) -> Callable[[str, dict[str, Any]], bool]:
    return lambda kind, data: kind == "log" and key in data


def test_pool_process_killed_by_the_oom_killer_is_retried_then_failed(
    fault_stack: MakeStack, tmp_path: Path
) -> None:
    """The kernel's OOM killer SIGKILLs the biggest process: Celery's pool child, not the
    worker. Each delivery is retried from its checkpoint (heartbeat + reconciler) until
    `max_attempts`; then the job is failed with WorkerLost and the worker serves the next."""
    stack = fault_stack(max_attempts="2")
    job_id = add_tiny_job(
        stack.sessions, stack.storage, tmp_path / "in", structure_epochs=20, batch_size=8
    )  # fmt: skip
    reconciler = Reconciler(stack.sessions, stack.queue, stack.settings)  # as in the API
    reconciler.start()
    try:
        worker = stack.start_worker()
        stack.submit(job_id)
        # Attempt 1 is killed after its first epoch checkpoint, attempt 2 once it resumed.
        for attempt, marker in ((1, "checkpoint"), (2, "resumed")):
            stack.wait_event(job_id, f"attempt {attempt}'s {marker} log", 120, _log_with(marker))
            job = stack.job(job_id)
            assert job.attempts == attempt and job.worker
            runner = int(job.worker.rsplit(":", 1)[1])  # "<node>:<pid of the pool process>"
            assert runner in child_pids(worker.process.pid)
            os.kill(runner, signal.SIGKILL)
        assert stack.wait_state(job_id, TERMINAL, 60) == "failed"
        job = stack.job(job_id)
        assert (job.error_type, job.attempts) == (WORKER_LOST, 2)
        assert "heartbeats" in (job.error_message or "")
        assert not stack.artifact_rows(job_id)
        _assert_served_next_job(stack, tmp_path / "next", worker.process.pid)
    finally:
        reconciler.stop()


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `path`: a disk that really fills up (needs root)."""
    path.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True, check=False,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    filler = disk / "filler"
    with filler.open("wb") as out:
        out.write(b"\0" * (free - leave))
    return filler


def test_disk_full_while_publishing_fails_the_job_with_nothing_partial(
    fault_stack: MakeStack, tmp_path: Path, unique_suffix: str
) -> None:
    with small_disk(tmp_path / "disk", "8m") as disk:
        stack = fault_stack(artifacts_url=str(disk / "artifacts"))
        deployment = f"full-{unique_suffix}"
        # No epochs: nothing is written to the store until publishing (no epoch checkpoint),
        # and the run still prunes (calibration alone picks the channels).
        job_id = add_tiny_job(
            stack.sessions, stack.storage, tmp_path / "in", deployment=deployment,
            structure_epochs=0, finetune_epochs=0,
        )  # fmt: skip
        # Room for model.onnx (~290 kB), not for baseline.onnx (~580 kB) after it: the
        # publish fails half-way, after one artifact is stored.
        filler = _fill(disk, leave=400 * 1024)
        worker = stack.start_worker()
        stack.submit(job_id)

        assert stack.wait_state(job_id, TERMINAL, 120) == "failed"
        job = stack.job(job_id)
        assert job.error_type == "OSError"
        assert job.error_message and "No space left on device" in job.error_message
        # Nothing of the run is visible: no artifact rows, no deployment, no checkpoint ...
        assert not stack.artifact_rows(job_id)
        with stack.sessions() as session:
            assert deployments.current(session, deployment) is None
        assert not stack.storage.key_exists(checkpoint_key(job_id))
        # ... no half-written object, and every stored blob is complete (its name is its hash).
        root = disk / "artifacts"
        assert not list((root / "tmp").iterdir())
        blobs = [p for p in (root / "sha256").rglob("*") if p.is_file()]
        assert len(blobs) == 3  # checkpoint and data of the job, model.onnx of the run
        for blob in blobs:
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name

        # Space again: the same worker publishes the next job (model.onnx deduplicated).
        filler.unlink()
        _assert_served_next_job(stack, tmp_path / "next", worker.process.pid)
        stack.workers.pop().stop()  # before the tmpfs goes away
