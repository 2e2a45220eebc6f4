"""The edge client against the real EdgePrune service on loopback.

The service is the real app (`create_app`) served by uvicorn in a thread, on a temporary
SQLite database, SQLite broker and artifact folder. The state a worker would produce (a
succeeded job with model.onnx and baseline.onnx published) is written with the store's own
functions; everything the device does goes over HTTP through the real routes.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from bench.seed import add_job_inputs, add_succeeded_job
from edge_client.api import ApiClient
from edge_client.backoff import Backoff, Stopper
from edge_client.bench import BenchConfig
from edge_client.cli import app as cli_app
from edge_client.errors import AuthError, IntegrityError
from edge_client.runner import RunConfig, Runner
from edge_client.state import DeviceConfig, StateDir
from edge_client.updater import Outcome, Updater
from infra.settings import Settings
from infra.storage import ArtifactStore
from infra.store.deployments import rollout_bucket
from infra.store.tokens import create_token
from service.api.main import create_app
from tests.edge_client.edge_test_server import CLASSES, INPUT_SHAPE, TinyModels, export_tiny_models

pytestmark = pytest.mark.integration


@dataclass
class LiveService:
    url: str
    admin_token: str
    sessions: sessionmaker[Session]
    storage: ArtifactStore

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    def publish_job(self, model: bytes, baseline: bytes) -> str:
        """A succeeded job with its ONNX artifacts, written as the worker would."""
        inputs = add_job_inputs(
            self.sessions, classes=CLASSES, input_shape=INPUT_SHAPE, arch="tiny"
        )
        return add_succeeded_job(self.sessions, self.storage, inputs, model, baseline).job_id

    def promote(self, deployment: str, job_id: str) -> None:
        response = httpx.put(
            f"{self.url}/v1/deployments/{deployment}",
            json={"job_id": job_id},
            headers=self.admin,
            timeout=10,
        )
        assert response.status_code in (200, 201), response.text

    def register(self, deployment: str, name: str) -> tuple[str, str]:
        with ApiClient(self.url, self.admin_token) as api:
            registration = api.register_device(name, deployment)
        return registration.device_id, registration.token


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return export_tiny_models(tmp_path_factory.mktemp("onnx"))


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'api.db'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        artifacts_url=str(tmp_path / "artifacts"),
        reconcile_interval_s=3600.0,  # no worker process here: keep the reconciler quiet
        inspect_wait_s=0.3,
    )


@pytest.fixture
def live_service(tmp_path: Path) -> Iterator[LiveService]:
    settings = _settings(tmp_path)
    app = create_app(settings)
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "uvicorn exited during startup"
        assert time.monotonic() < deadline, "uvicorn did not start in 60 s"
        time.sleep(0.05)
    sessions: sessionmaker[Session] = app.state.sessions
    with sessions() as session:
        _, admin = create_token(session, "test admin", kind="admin")
        session.commit()
    try:
        yield LiveService(f"http://127.0.0.1:{port}", admin, sessions, app.state.storage)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _api(service: LiveService, token: str) -> ApiClient:
    return ApiClient(
        service.url, token, retries=1, backoff=Backoff(base=0.01, cap=0.05), rng=random.Random(0)
    )


def _artifact_gets(caplog: pytest.LogCaptureFixture) -> list[str]:
    # httpx logs every response it gets: "HTTP Request: GET <url> "HTTP/1.1 206 Partial ...""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "httpx" and "/v1/artifacts/" in r.getMessage()
    ]


def test_poll_installs_then_304_then_picks_up_a_promotion(
    live_service: LiveService,
    tiny_models: TinyModels,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    baseline = tiny_models.bytes("baseline")
    live_service.promote("cams", live_service.publish_job(tiny_models.bytes("pruned"), baseline))
    _, token = live_service.register("cams", "cam-17")
    state = StateDir(tmp_path / "device")
    with _api(live_service, token) as api:
        updater = Updater(api, state, "cams")

        first = updater.poll()
        assert first.outcome is Outcome.INSTALLED
        current = state.current()
        assert current is not None and current.manifest.version == 1
        assert current.model_path.read_bytes() == tiny_models.bytes("pruned")
        assert current.baseline_path is not None
        assert current.baseline_path.read_bytes() == baseline
        assert len(_artifact_gets(caplog)) == 2  # model and baseline

        caplog.clear()
        assert updater.poll().outcome is Outcome.NOT_MODIFIED
        assert _artifact_gets(caplog) == []

        job2 = live_service.publish_job(tiny_models.bytes("pruned_v2"), baseline)
        live_service.promote("cams", job2)
        caplog.clear()
        assert updater.poll().outcome is Outcome.INSTALLED
        current, previous = state.current(), state.previous()
        assert current is not None and previous is not None
        assert (current.manifest.version, current.manifest.job_id) == (2, job2)
        assert previous.manifest.version == 1
        # The baseline did not change between the jobs: only the new model was fetched.
        assert len(_artifact_gets(caplog)) == 1


def test_download_resumes_with_range_from_the_real_service(
    live_service: LiveService,
    tiny_models: TinyModels,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    model = tiny_models.bytes("baseline")  # the larger file
    live_service.promote("cams", live_service.publish_job(model, tiny_models.bytes("baseline")))
    _, token = live_service.register("cams", "cam-1")
    state = StateDir(tmp_path / "device")
    with _api(live_service, token) as api:
        manifest = api.get_manifest("cams")
        assert manifest is not None
        # What an earlier, cut download left behind.
        state.download_path(manifest.sha256).write_bytes(model[: len(model) // 2])
        assert Updater(api, state, "cams").poll().outcome is Outcome.INSTALLED
    current = state.current()
    assert current is not None and current.model_path.read_bytes() == model
    assert any("206 Partial Content" in line for line in _artifact_gets(caplog))


def test_corrupted_artifact_is_rejected_and_current_untouched(
    live_service: LiveService, tiny_models: TinyModels, tmp_path: Path
) -> None:
    baseline = tiny_models.bytes("baseline")
    live_service.promote("cams", live_service.publish_job(tiny_models.bytes("pruned"), baseline))
    _, token = live_service.register("cams", "cam-1")
    state = StateDir(tmp_path / "device")
    with _api(live_service, token) as api:
        updater = Updater(api, state, "cams")
        updater.poll()
        before = state.current_dir.joinpath("model.onnx").read_bytes()

        v2 = tiny_models.bytes("pruned_v2")
        live_service.promote("cams", live_service.publish_job(v2, baseline))
        manifest = api.get_manifest("cams")
        assert manifest is not None
        # Bit rot in the server's store: same length, different bytes.
        blob = live_service.storage.local_path(manifest.sha256)
        assert blob is not None
        blob.chmod(0o644)
        blob.write_bytes(bytes(b ^ 0x55 for b in v2[:32]) + v2[32:])
        with pytest.raises(IntegrityError, match="sha256"):
            updater.poll()
    current = state.current()
    assert current is not None and current.manifest.version == 1
    assert current.model_path.read_bytes() == before


def test_device_token_cannot_read_another_deployment(
    live_service: LiveService, tiny_models: TinyModels, tmp_path: Path
) -> None:
    job = live_service.publish_job(tiny_models.bytes("pruned"), tiny_models.bytes("baseline"))
    live_service.promote("other", job)
    own = live_service.publish_job(tiny_models.bytes("pruned_v2"), tiny_models.bytes("baseline"))
    live_service.promote("cams", own)  # devices register only for deployments that exist
    _, token = live_service.register("cams", "cam-1")
    with _api(live_service, token) as api:
        with pytest.raises(AuthError) as info:
            api.get_manifest("other")
        assert info.value.status == 403
    with ApiClient(live_service.url, live_service.admin_token) as admin:
        other = admin.get_manifest("other")
    assert other is not None
    with _api(live_service, token) as api, pytest.raises(AuthError) as info:
        api.download(other.url, tmp_path / "stolen.part", other.size)
    assert info.value.status == 403
    assert not (tmp_path / "stolen.part").exists()


def test_cli_register_run_once_report_and_rollback(
    live_service: LiveService, tiny_models: TinyModels, tmp_path: Path
) -> None:
    cli = CliRunner()
    state_dir = str(tmp_path / "device")
    baseline = tiny_models.bytes("baseline")
    live_service.promote("cams", live_service.publish_job(tiny_models.bytes("pruned"), baseline))
    register = ["register", "--server", live_service.url, "--deployment", "cams"]
    register += ["--name", "cam-17", "--token", live_service.admin_token, "--state-dir", state_dir]
    registered = cli.invoke(cli_app, register)
    assert registered.exit_code == 0, registered.output
    run = ["run", "--once", "--runs", "5", "--warmup", "1", "--state-dir", state_dir]
    first = cli.invoke(cli_app, run)
    assert first.exit_code == 0, first.output
    assert "installed: current version 1 (fp32); reported" in first.stdout

    devices = httpx.get(f"{live_service.url}/v1/devices", headers=live_service.admin, timeout=10)
    assert devices.status_code == 200, devices.text
    (device,) = devices.json()["data"]
    assert device["name"] == "cam-17" and device["current_version"] == 1
    report: dict[str, Any] = device["last_report"]
    assert 0 < report["latency"]["p50_ms"] <= report["latency"]["p95_ms"]
    assert report["speedup"] > 1 and report["threads"] == 1

    live_service.promote("cams", live_service.publish_job(tiny_models.bytes("pruned_v2"), baseline))
    assert cli.invoke(cli_app, run).exit_code == 0
    back = cli.invoke(cli_app, ["rollback", "--state-dir", state_dir])
    assert back.exit_code == 0 and "rolled back to version 1" in back.stdout
    again = cli.invoke(cli_app, run)  # 304: the version rolled away from stays away
    assert again.exit_code == 0, again.output
    assert "current version 1" in again.stdout


def test_staged_rollout_failed_install_and_forced_reregistration(
    live_service: LiveService, tiny_models: TinyModels, tmp_path: Path
) -> None:
    """Devices running the real edge client: a 50% stage reaches exactly the devices its
    hash picks, a device whose download is corrupted reports the failed install, the fleet
    summary shows both, and `edge-client register --force` retires the old device."""
    baseline = tiny_models.bytes("baseline")
    live_service.promote("cams", live_service.publish_job(tiny_models.bytes("pruned"), baseline))
    devices: list[tuple[str, str]] = []
    while len(devices) < 2 or len({rollout_bucket(d) < 50 for d, _ in devices}) < 2:
        devices.append(live_service.register("cams", f"cam-{len(devices)}"))
    runners = []
    for device_id, token in devices:
        api = _api(live_service, token)
        config = DeviceConfig(live_service.url, "cams", device_id, device_id, token)
        run_config = RunConfig(bench=BenchConfig(runs=3, warmup=1))
        runners.append(Runner(api, StateDir(tmp_path / device_id), config, run_config, Stopper()))
    for runner in runners:
        assert runner.cycle().report is not None  # v1 installed and benchmarked

    v2 = tiny_models.bytes("pruned_v2")
    job2 = live_service.publish_job(v2, baseline)
    staged = httpx.put(
        f"{live_service.url}/v1/deployments/cams", json={"job_id": job2, "percent": 50},
        headers=live_service.admin, timeout=10,
    )  # fmt: skip
    assert staged.status_code == 200, staged.text
    inside = [r for r in runners if rollout_bucket(r.device.device_id) < 50]
    outside = [r for r in runners if rollout_bucket(r.device.device_id) >= 50]
    # One staged device gets corrupted bytes: the server's copy rots after the others fetched.
    for runner in inside[1:]:
        assert runner.cycle().update.outcome is Outcome.INSTALLED
    for runner in outside:
        assert runner.cycle().update.outcome is Outcome.NOT_MODIFIED
    manifest = inside[0].api.get_manifest("cams")
    assert manifest is not None and manifest.version == 2
    blob = live_service.storage.local_path(manifest.sha256)
    assert blob is not None
    blob.chmod(0o644)
    blob.write_bytes(bytes(b ^ 0x55 for b in v2[:32]) + v2[32:])
    with pytest.raises(IntegrityError):
        inside[0].cycle()

    fleet = httpx.get(
        f"{live_service.url}/v1/deployments/cams/fleet", headers=live_service.admin, timeout=10
    ).json()
    by_version = {v["version"]: v for v in fleet["versions"]}
    assert by_version[2]["assigned"] == len(inside) and by_version[2]["running"] == len(inside) - 1
    assert by_version[1]["running"] == len(outside) + 1
    assert by_version[2]["benchmarked"] == len(inside) - 1
    [failed] = fleet["failed_installs"]
    assert failed["device_id"] == inside[0].device.device_id
    assert (failed["version"], failed["stage"]) == (2, "checksum")
    for runner in runners:
        runner.api.close()

    # The name of a device that is replaced (new hardware, wiped disk) needs --force.
    cli = CliRunner()
    old_id, old_token = devices[0]
    register = ["register", "--server", live_service.url, "--deployment", "cams", "--name",
                "cam-0", "--token", live_service.admin_token]  # fmt: skip
    register += ["--state-dir", str(tmp_path / "new")]
    refused = cli.invoke(cli_app, register)
    assert refused.exit_code == 6 and "409" in refused.stderr and "force" in refused.stderr
    forced = cli.invoke(cli_app, [*register, "--force"])
    assert forced.exit_code == 0, forced.output
    assert f"(revoked {old_id})" in forced.stdout
    with _api(live_service, old_token) as api, pytest.raises(AuthError) as info:
        api.get_manifest("cams")
    assert info.value.status == 401


def test_an_installed_architecture_goes_from_upload_to_a_device(
    live_service: LiveService, tmp_path: Path
) -> None:
    """se_resnet is not in the zoo: it comes from the test package's edgeprune.models entry
    point. Uploaded over HTTP as a plain state dict, inspected and compressed by the worker
    code (in process, on the same database and store), published to a deployment, pulled and
    run by a device."""
    import numpy as np
    import onnxruntime as ort

    from tests.worker.tinyjob import write_inputs
    from worker.architectures import report_architectures
    from worker.context import build_context
    from worker.inspect_model import inspect_uploaded_model
    from worker.run_job import JobRun

    ctx = build_context(_settings(tmp_path))
    report_architectures(ctx.settings, "gpu@test")  # what a worker does when it starts
    checkpoint, data = write_inputs(tmp_path / "inputs", arch="se_resnet")
    admin = live_service.admin
    with checkpoint.open("rb") as fh:
        uploaded = httpx.post(
            f"{live_service.url}/v1/models", headers=admin, timeout=60,
            files={"file": (checkpoint.name, fh)},
            data={"arch": "se_resnet", "num_classes": "10", "input_shape": "1,32,32"},
        )  # fmt: skip
    assert uploaded.status_code == 202, uploaded.text  # pending: no worker process here
    model_id = uploaded.json()["id"]
    assert inspect_uploaded_model(ctx, model_id) == "ready"
    with data.open("rb") as fh:
        dataset = httpx.post(
            f"{live_service.url}/v1/datasets", headers=admin, timeout=60,
            files={"file": (data.name, fh)},
        )  # fmt: skip
    assert dataset.status_code in (200, 201), dataset.text
    job = httpx.post(
        f"{live_service.url}/v1/jobs", headers=admin, timeout=30,
        json={
            "model_id": model_id, "dataset_id": dataset.json()["id"],
            "target": {"metric": "flops", "reduction": 0.5}, "structure_epochs": 1,
            "finetune_epochs": 1, "batch_size": 32, "augment": False, "deployment": "cams",
        },
    )  # fmt: skip
    assert job.status_code == 202, job.text
    assert JobRun(ctx, job.json()["id"], "test:1").execute() == "succeeded"

    _, token = live_service.register("cams", "cam-1")
    state = StateDir(tmp_path / "device")
    with _api(live_service, token) as api:
        assert Updater(api, state, "cams").poll().outcome is Outcome.INSTALLED
    current = state.current()
    assert current is not None and current.manifest.preprocessing is not None
    session = ort.InferenceSession(str(current.model_path), providers=["CPUExecutionProvider"])
    logits = session.run(None, {"input": np.zeros((2, 1, 32, 32), dtype=np.float32)})[0]
    assert logits.shape == (2, 10)
    ctx.engine.dispose()
