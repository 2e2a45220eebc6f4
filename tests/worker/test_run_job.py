"""One delivery of a real tiny job, in process (no Celery): success, failure, cancel, fencing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sqlalchemy import select

from infra.settings import Settings
from infra.storage import ArtifactStore
from infra.store import deployments, job_events, job_recovery, jobs
from infra.store.models import Deployment, JobArtifact, utcnow
from tests.worker.tinyjob import add_tiny_job
from worker.context import WorkerContext
from worker.hooks import checkpoint_key
from worker.inspect_model import inspect_uploaded_model
from worker.run_job import JobRun, run_next_job

ARTIFACTS = {
    "model.onnx", "baseline.onnx", "pruned.pt", "structure.json", "report.json",
    "channels.png", "history.png",
}  # fmt: skip


def _events(ctx: WorkerContext, job_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    with ctx.sessions() as session:
        return [
            (e.seq, e.kind, e.data) for e in job_events.events_after(session, job_id, 0, 10_000)
        ]


def test_job_succeeds_publishes_artifacts_and_promotes(ctx: WorkerContext, tmp_path: Path) -> None:
    # A staged promotion was asked for, but a deployment's first version goes to every device.
    job_id = add_tiny_job(
        ctx.sessions, ctx.storage, tmp_path / "in", deployment="cam", rollout_percent=10
    )
    assert JobRun(ctx, job_id, "test:1").execute() == "succeeded"

    with ctx.sessions() as session:
        job = jobs.get_job(session, job_id)
        rows = {
            a.name: a
            for a in session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id))
        }
        current = deployments.current(session, "cam")
        staged = session.get(Deployment, "cam")
    assert staged is not None and staged.rollout_version is None
    assert (job.state, job.progress, job.attempts, job.error_type) == ("succeeded", 1.0, 1, None)
    assert job.summary is not None and 0.3 < job.summary["achieved"]["flops"] < 0.8
    assert job.summary["flops_after"] < job.summary["flops_before"]
    assert set(rows) == ARTIFACTS
    for row in rows.values():
        with ctx.storage.open(row.sha256) as handle:
            data = handle.read()
        assert hashlib.sha256(data).hexdigest() == row.sha256 and len(data) == row.size
    report = json.loads(ctx.storage.read_range(rows["report.json"].sha256, 0))
    assert report["achieved"] == job.summary["achieved"]
    assert rows["report.json"].content_type == "application/json"
    assert current is not None and current.job_id == job_id and current.version == 1
    assert not ctx.storage.key_exists(checkpoint_key(job_id))  # nothing left to resume

    events = _events(ctx, job_id)
    assert [seq for seq, _, _ in events] == list(range(1, len(events) + 1))
    phases = [d["phase"] for _, kind, d in events if kind in ("progress", "epoch")]
    firsts = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert firsts == [
        "calibrating",
        "structure_learning",
        "pruning",
        "weight_learning",
        "exporting",
    ]
    progress = [d["progress"] for _, kind, d in events if kind == "progress"]
    assert progress == sorted(progress)
    assert sum(kind == "epoch" for _, kind, _ in events) == 2
    states = [d["state"] for _, kind, d in events if kind == "state"]
    assert states == ["queued", "running", "succeeded"]

    # A redelivery of the same message: nothing runs, nothing is added.
    assert JobRun(ctx, job_id, "test:2").execute() == "succeeded"
    assert len(_events(ctx, job_id)) == len(events)
    with ctx.sessions() as session:
        assert (
            len(list(session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id)))) == 7
        )
        assert len(deployments.history(session, "cam")) == 1


def test_an_installed_architecture_outside_the_zoo_runs_and_publishes(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    """se_resnet comes from the test package's edgeprune.models entry point, uploaded as a
    plain state dict: the worker inspects it, compresses it and publishes a working ONNX."""
    job_id = add_tiny_job(ctx.sessions, ctx.storage, tmp_path / "in", arch="se_resnet")
    with ctx.sessions() as session:
        model_id = jobs.get_job(session, job_id).model_id
    assert inspect_uploaded_model(ctx, model_id) == "ready"
    assert JobRun(ctx, job_id, "test:1").execute() == "succeeded"
    with ctx.sessions() as session:
        job = jobs.get_job(session, job_id)
        rows = {
            a.name: a
            for a in session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id))
        }
    assert job.summary is not None and abs(job.summary["achieved"]["flops"] - 0.5) <= 0.01
    report = json.loads(ctx.storage.read_range(rows["report.json"].sha256, 0))
    assert {k["conv"] for k in report["kept_convs"]} == {"stem.0", "layer2.conv2.0"}
    with ctx.storage.open(rows["model.onnx"].sha256) as handle:
        session_ = ort.InferenceSession(handle.read(), providers=["CPUExecutionProvider"])
    logits = session_.run(None, {"input": np.zeros((2, 1, 32, 32), dtype=np.float32)})[0]
    assert logits.shape == (2, 10)


def test_bad_data_fails_with_a_one_line_message(ctx: WorkerContext, tmp_path: Path) -> None:
    job_id = add_tiny_job(ctx.sessions, ctx.storage, tmp_path / "in", data_bytes=b"not an npz")
    assert JobRun(ctx, job_id, "test:1").execute() == "failed"
    with ctx.sessions() as session:
        job = jobs.get_job(session, job_id)
    assert job.state == "failed" and job.error_type == "DataError"
    assert (
        job.error_message and "\n" not in job.error_message and "Traceback" not in job.error_message
    )


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ({"metric": "flops", "reduction": 1.5}, "target reduction must be in (0, 1)"),
        # Every unit keeps at least 10% of its channels: 95% of them can never go.
        ({"metric": "channels", "reduction": 0.95}, "every prunable unit to its floor"),
    ],
)
def test_invalid_target_fails_cleanly(
    ctx: WorkerContext, tmp_path: Path, target: dict[str, object], said: str
) -> None:
    job_id = add_tiny_job(ctx.sessions, ctx.storage, tmp_path / "in", target=target)
    assert JobRun(ctx, job_id, "test:1").execute() == "failed"
    with ctx.sessions() as session:
        job = jobs.get_job(session, job_id)
    assert (job.error_type, job.state) == ("InvalidTarget", "failed")
    assert job.error_message and said in job.error_message


def _run_in_thread(ctx: WorkerContext, job_id: str) -> tuple[threading.Thread, list[str]]:
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(JobRun(ctx, job_id, "t:1").execute()))
    thread.start()
    return thread, outcome


def _wait_for_step_events(ctx: WorkerContext, job_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(d.get("step") for _, kind, d in _events(ctx, job_id) if kind == "progress"):
        assert time.monotonic() < deadline, "the job never reported a training step"
        time.sleep(0.1)


def test_cancel_is_honoured_within_a_step(ctx: WorkerContext, tmp_path: Path) -> None:
    job_id = add_tiny_job(
        ctx.sessions,
        ctx.storage,
        tmp_path / "in",
        structure_epochs=20,
        finetune_epochs=20,
        batch_size=8,
    )
    thread, outcome = _run_in_thread(ctx, job_id)
    _wait_for_step_events(ctx, job_id)
    with ctx.sessions.begin() as session:
        assert jobs.request_cancel(session, job_id) == "running"
    asked = time.monotonic()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert time.monotonic() - asked < 5
    assert outcome == ["canceled"]
    with ctx.sessions() as session:
        assert jobs.get_job(session, job_id).state == "canceled"


def test_superseded_run_stops_without_writing(ctx: WorkerContext, tmp_path: Path) -> None:
    job_id = add_tiny_job(
        ctx.sessions,
        ctx.storage,
        tmp_path / "in",
        structure_epochs=20,
        finetune_epochs=20,
        batch_size=8,
    )
    thread, outcome = _run_in_thread(ctx, job_id)
    _wait_for_step_events(ctx, job_id)
    # The reconciler decides this run's worker is gone and hands the job to a new delivery.
    with ctx.sessions.begin() as session:
        assert job_recovery.requeue_stale(session, job_id, 1, utcnow() + timedelta(seconds=1))
    thread.join(timeout=30)
    assert outcome == ["superseded"]
    with ctx.sessions() as session:
        job = jobs.get_job(session, job_id)
    assert (job.state, job.attempts, job.finished_at) == ("queued", 1, None)


def test_next_delivery_resumes_from_the_epoch_checkpoint(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    job_id = add_tiny_job(
        ctx.sessions,
        ctx.storage,
        tmp_path / "in",
        structure_epochs=4,
        finetune_epochs=1,
        batch_size=8,
    )
    thread, outcome = _run_in_thread(ctx, job_id)
    deadline = time.monotonic() + 90
    while not any("checkpoint" in d for _, kind, d in _events(ctx, job_id) if kind == "log"):
        assert time.monotonic() < deadline, "no checkpoint was saved"
        time.sleep(0.1)
    # The first delivery's worker "dies": the reconciler hands the job on.
    with ctx.sessions.begin() as session:
        assert job_recovery.requeue_stale(session, job_id, 1, utcnow() + timedelta(seconds=1))
    thread.join(timeout=30)
    assert outcome == ["superseded"]
    assert ctx.storage.key_exists(checkpoint_key(job_id))
    before = len(_events(ctx, job_id))

    assert JobRun(ctx, job_id, "t:2").execute() == "succeeded"
    second = _events(ctx, job_id)[before:]
    resumed = [d["resumed"] for _, kind, d in second if kind == "log" and "resumed" in d]
    assert len(resumed) == 1 and resumed[0]["phase"] == "structure_learning"
    done_epoch = resumed[0]["epoch"]
    assert done_epoch >= 1
    epochs = [(d["phase"], d["epoch"]) for _, kind, d in second if kind == "epoch"]
    # Only the epochs after the checkpoint are trained again.
    assert epochs[0] == ("structure_learning", done_epoch + 1)
    assert not any(kind == "progress" and d["phase"] == "calibrating" for _, kind, d in second)
    with ctx.sessions() as session:
        job = jobs.get_job(session, job_id)
    assert (job.state, job.attempts) == ("succeeded", 2)


def test_unexpected_error_fails_the_job_with_type_and_message(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    job_id = add_tiny_job(ctx.sessions, ctx.storage, tmp_path / "in", data_bytes=b"lost bytes")
    lost = ctx.storage.local_path(hashlib.sha256(b"lost bytes").hexdigest())
    assert lost is not None
    lost.unlink()  # the dataset's blob vanished from the store
    assert JobRun(ctx, job_id, "test:1").execute() == "failed"
    with ctx.sessions() as session:
        job = jobs.get_job(session, job_id)
    assert job.error_type == "ArtifactNotFound"
    assert job.error_message and "Traceback" not in job.error_message


class _CancelDuringUpload(ArtifactStore):
    """The operator's cancel (POST /v1/jobs/{id}/cancel) lands while artifacts upload."""

    def __init__(self, url: str, ctx: WorkerContext, job_id: str) -> None:
        super().__init__(url)
        self.ctx, self.job_id, self.asked = ctx, job_id, False

    def put_file(self, path: str | Path) -> tuple[str, int]:
        if not self.asked:
            self.asked = True
            with self.ctx.sessions.begin() as session:
                assert jobs.request_cancel(session, self.job_id) == "running"
        return super().put_file(path)


def test_cancel_during_publishing_wins_over_success(ctx: WorkerContext, tmp_path: Path) -> None:
    job_id = add_tiny_job(ctx.sessions, ctx.storage, tmp_path / "in", deployment="cam")
    storage = _CancelDuringUpload(ctx.storage.url, ctx, job_id)
    assert JobRun(dataclasses.replace(ctx, storage=storage), job_id, "t:1").execute() == "canceled"
    assert storage.asked
    with ctx.sessions() as session:
        assert jobs.get_job(session, job_id).state == "canceled"
        assert not list(session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id)))
        assert deployments.current(session, "cam") is None
    assert _events(ctx, job_id)[-1][1:] == ("state", {"state": "canceled"})


def test_a_message_runs_the_first_arrived_queued_job(ctx: WorkerContext, tmp_path: Path) -> None:
    """Messages are wake-ups: whichever job's message comes first, jobs run in the order the
    API recorded them, and every message still runs one job."""
    ids = [
        add_tiny_job(ctx.sessions, ctx.storage, tmp_path / f"in{i}", structure_epochs=0)
        for i in range(3)
    ]
    with ctx.sessions.begin() as session:  # recorded in order 0, 1, 2, one second apart
        for offset, job_id in enumerate(ids):
            jobs.get_job(session, job_id).created_at = utcnow() + timedelta(seconds=offset)

    finished = []
    for message in reversed(ids):  # the broker delivers them in the opposite order
        assert run_next_job(ctx, message, "test:1") == "succeeded"
        with ctx.sessions() as session:
            done = {j: jobs.get_job(session, j).finished_at for j in ids}
        finished.append(next(j for j in ids if done[j] is not None and j not in finished))
    assert finished == ids
    # A message whose job is already done, with nothing else queued, runs nothing.
    assert run_next_job(ctx, ids[0], "test:1") == "succeeded"


def test_a_job_stalled_in_a_native_kernel_fails_and_replaces_the_process(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """No training step for `stall_timeout_s`: the job is failed with the reason, its temporary
    folder removed and the pool process told to go (Celery then starts a fresh one)."""
    import ctypes

    import worker.run_job as run_job_module
    from infra.settings import Settings
    from infra.store.migrate import upgrade_database
    from pruning.config import ProgressEvent
    from worker.context import build_context

    settings = Settings(data_dir=tmp_path / "data", heartbeat_interval_s=0.2, stall_timeout_s=0.5)
    upgrade_database(settings.resolved_database_url())
    ctx = build_context(settings)
    job_id = add_tiny_job(ctx.sessions, ctx.storage, tmp_path / "in")
    workdirs: list[Path] = []
    replaced = threading.Event()

    def stuck_engine(request: Any, out_dir: Path, hooks: Any) -> Any:
        workdirs.append(out_dir.parent)
        hooks.on_progress(ProgressEvent(phase="calibrating", progress=0.0, step=1, steps=9))
        ctypes.CDLL(None).usleep(2_000_000)  # a thread blocked in C, the GIL released
        raise AssertionError("the process should have been replaced by now")

    monkeypatch.setattr(run_job_module, "run_compression", stuck_engine)
    monkeypatch.setattr(run_job_module, "replace_process", replaced.set)
    try:
        outcome = JobRun(ctx, job_id, "test:1").execute()
        assert replaced.is_set()
        # The stuck call returned after the job was failed: this delivery writes nothing more.
        assert outcome == "superseded"
        with ctx.sessions() as session:
            job = jobs.get_job(session, job_id)
        assert (job.state, job.error_type) == ("failed", "TrainingStalled")
        assert job.error_message and "stalled in a native kernel" in job.error_message
        assert not workdirs[0].exists()
        # The message comes back to the fresh process: the job is terminal, nothing runs.
        assert JobRun(ctx, job_id, "test:2").execute() == "failed"
    finally:
        ctx.engine.dispose()


def test_an_int8_job_publishes_the_quantized_model_beside_fp32(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    job_id = add_tiny_job(
        ctx.sessions, ctx.storage, tmp_path / "in", quantize="int8", int8_max_drop=1.0
    )
    assert JobRun(ctx, job_id, "test:1").execute() == "succeeded"
    with ctx.sessions() as session:
        rows = {
            a.name: a
            for a in session.scalars(select(JobArtifact).where(JobArtifact.job_id == job_id))
        }
    assert set(rows) == {*ARTIFACTS, "model.int8.onnx"}
    report = json.loads(ctx.storage.read_range(rows["report.json"].sha256, 0))
    assert report["int8"]["published"] is True
    with ctx.storage.open(rows["model.int8.onnx"].sha256) as handle:
        model = onnx.load_model_from_string(handle.read())
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata["edgeprune.variant"] == "int8"
    assert metadata["edgeprune.source_job"] == job_id


def test_a_new_attempt_removes_the_folder_a_killed_attempt_left(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    job_id = add_tiny_job(ctx.sessions, ctx.storage, tmp_path / "in")
    dead = Path(tempfile.mkdtemp(prefix=f"edgeprune-{job_id}-"))  # as a SIGKILLed run leaves
    (dead / "model.pt").write_bytes(b"x" * 1000)
    other = Path(tempfile.mkdtemp(prefix="edgeprune-job_someoneelse-"))
    try:
        assert JobRun(ctx, job_id, "test:1").execute() == "succeeded"
        assert not dead.exists()
        assert other.exists()  # another job's folder is not this delivery's to remove
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_default_settings_recover_a_killed_worker_within_30_seconds() -> None:
    settings = Settings()
    assert settings.heartbeat_timeout_s + settings.reconcile_interval_s <= 30
    assert settings.heartbeat_timeout_s >= 3 * settings.heartbeat_interval_s
