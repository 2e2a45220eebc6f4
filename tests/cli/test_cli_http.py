"""The operator CLI's HTTP commands against the real API on loopback."""

from __future__ import annotations

import io
import json
import re
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from edgeprune.cli import app
from infra.store import jobs as job_store
from infra.store.models import Model
from tests.api.api_helpers import finish_job, seed_dataset, seed_model
from tests.support.live_server import LiveServer

runner = CliRunner()


def cli(server: LiveServer, *args: str, token: str | None = None) -> Any:
    return runner.invoke(
        app, [*args, "--server", server.url, "--token", token or server.admin_token]
    )


def submit(server: LiveServer, *extra: str) -> str:
    result = cli(
        server, "jobs", "submit", "--model", seed_model(server), "--dataset",
        seed_dataset(server), "--target", "flops=0.5", "--structure-epochs", "1",
        "--finetune-epochs", "1", *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job_id: str = result.stdout.strip()
    assert job_id.startswith("job_")
    return job_id


def test_models_upload_prints_the_id(live_server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "net.pt"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("net/data.pkl", b"\x80\x02}q\x00.")
    path.write_bytes(buffer.getvalue())
    result = cli(
        live_server, "models", "upload", str(path), "--arch", "vgg11", "--num-classes", "10",
        "--input-shape", "1,32,32",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("mdl_") and "pending" in result.stdout
    assert "uploading net.pt" in result.stderr and "loads into vgg11" in result.stderr
    listing = cli(live_server, "models", "list")
    assert result.stdout.split()[0] in listing.stdout


def test_models_upload_needs_no_fields_and_says_what_it_is_waiting_for(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.cli import uploads as upload_cli

    monkeypatch.setattr(upload_cli, "PROGRESS_EVERY_S", 0.05)
    live_server.settings.inspect_wait_s = 1.0  # no worker here: the answer is pending
    path = tmp_path / "net.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("net/data.pkl", b"\x80\x02}q\x00.")
    result = cli(live_server, "models", "upload", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("mdl_") and "pending" in result.stdout
    assert "reading its arch, classes and input" in result.stderr
    assert "uploaded; a worker is checking it (" in result.stderr


def test_models_upload_prints_what_the_inspection_detected(
    live_server: LiveServer, tmp_path: Path
) -> None:
    from tests.api.test_api_models_inspection import tiny_checkpoint
    from worker.context import build_context
    from worker.inspect_model import inspect_uploaded_model

    live_server.settings.inspect_wait_s = 60.0
    ctx = build_context(live_server.settings)
    stop = threading.Event()

    def inspect_pending() -> None:  # what an inspect worker does on taking the message
        while not stop.wait(0.05):
            with ctx.sessions() as session:
                pending = session.query(Model.id).filter(Model.status == "pending").all()
            for (model_id,) in pending:
                inspect_uploaded_model(ctx, model_id)

    worker = threading.Thread(target=inspect_pending, daemon=True)
    worker.start()
    try:
        path = tmp_path / "tiny.safetensors"
        path.write_bytes(tiny_checkpoint(tmp_path, ".safetensors"))
        result = cli(live_server, "models", "upload", str(path), "--num-classes", "4")
        wrong = cli(live_server, "models", "upload", str(path), "--input-shape", "1,4,4")
    finally:
        stop.set()
        worker.join(timeout=10)
        ctx.engine.dispose()
    assert result.exit_code == 0, result.output
    assert result.stdout.split()[1:6] == ["vgg11", "4", "classes", "input", "1x32x32"]
    assert re.search(r"  at most flops=0\.9\d\d$", result.stdout.strip())  # the inspection's limit
    assert "detected from the checkpoint: arch vgg11, input 1x32x32 (its height" in result.stderr
    assert wrong.exit_code == 6
    assert "does not run on 1x4x4 inputs" in wrong.stderr and "--input-shape" in wrong.stderr
    last = wrong.stderr.splitlines()[-1]
    assert last.startswith("error: 422 ") and "cannot be used: vgg11 does not run on" in last


def test_datasets_upload_and_list(live_server: LiveServer, tmp_path: Path) -> None:
    path = tmp_path / "digits.npz"
    np.savez(path, x=np.zeros((6, 1, 8, 8), dtype=np.float32), y=np.array([0, 1, 2] * 2))
    result = cli(live_server, "datasets", "upload", str(path), "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["samples"] == 6 and body["classes"] == ["0", "1", "2"]
    assert body["id"] in cli(live_server, "datasets", "list").stdout


def test_jobs_submit_list_and_show(live_server: LiveServer) -> None:
    job_id = submit(
        live_server,
        "--deployment",
        "cams",
        "--distill",
        "0.5",
        "--distill-phases",
        "both",
        "--target-fit",
        "cost_aware",
    )
    listing = cli(live_server, "jobs", "list")
    assert listing.exit_code == 0
    assert job_id in listing.stdout and "queued" in listing.stdout and "flops=0.5" in listing.stdout
    shown = json.loads(cli(live_server, "jobs", "show", job_id, "--json").stdout)
    assert shown["deployment"] == "cams"
    assert (shown["config"]["distill"], shown["config"]["distill_phases"]) == (0.5, "both")
    assert shown["config"]["target_fit"] == "cost_aware"


def test_jobs_submit_prints_the_servers_notes_and_refusals(live_server: LiveServer) -> None:
    model = seed_model(live_server, input_shape=(3, 32, 32))
    args = ["jobs", "submit", "--model", model, "--target", "flops=0.5", "--dataset"]
    resized = cli(live_server, *args, seed_dataset(live_server, input_shape=(3, 64, 48)))
    assert resized.exit_code == 0, resized.output
    assert resized.stdout.strip().startswith("job_")
    assert resized.stderr == (
        f"note: the dataset's inputs are 64x48 and model {model} (vgg11) takes 32x32: the "
        "worker resizes them to 32x32 (bilinear) before training\n"
    )
    gray = cli(live_server, *args, seed_dataset(live_server, input_shape=(1, 32, 32)))
    assert gray.exit_code == 6
    assert "has 1-channel inputs but model" in gray.stderr


def test_bad_target_is_a_one_line_error_with_exit_6(live_server: LiveServer) -> None:
    result = cli(
        live_server, "jobs", "submit", "--model", seed_model(live_server), "--dataset",
        seed_dataset(live_server), "--target", "flops=1.5",
    )  # fmt: skip
    assert result.exit_code == 6
    assert result.stderr.startswith("error: 422 Request validation failed: body.target.reduction")
    assert result.stderr.count("\n") == 1


def test_unparseable_target_is_a_usage_error(live_server: LiveServer) -> None:
    result = cli(live_server, "jobs", "submit", "--model", "m", "--dataset", "d", "--target", "x")
    assert result.exit_code == 2


def test_exit_codes_for_auth_not_found_and_unreachable(live_server: LiveServer) -> None:
    assert cli(live_server, "jobs", "list", token="ep_wrong").exit_code == 4
    missing = cli(live_server, "jobs", "show", "job_nope")
    assert missing.exit_code == 5 and "404" in missing.stderr
    down = runner.invoke(app, ["jobs", "list", "--server", "http://127.0.0.1:9", "--token", "x"])
    assert down.exit_code == 3 and "cannot reach" in down.stderr


def test_token_comes_from_the_env_or_the_serve_token_file(
    live_server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["jobs", "list", "--server", live_server.url]
    monkeypatch.setenv("EDGEPRUNE_DATA_DIR", str(tmp_path / "empty"))
    missing = runner.invoke(app, args)
    assert missing.exit_code == 4 and "no token" in missing.stderr

    (tmp_path / "admin-token").write_text(live_server.admin_token + "\n")
    monkeypatch.setenv("EDGEPRUNE_DATA_DIR", str(tmp_path))
    assert runner.invoke(app, args).exit_code == 0

    monkeypatch.setenv("EDGEPRUNE_TOKEN", live_server.admin_token)
    monkeypatch.setenv("EDGEPRUNE_DATA_DIR", str(tmp_path / "empty"))
    assert runner.invoke(app, args).exit_code == 0


def test_watch_follows_the_stream_and_exits_0_on_success(live_server: LiveServer) -> None:
    job_id = submit(live_server)

    def worker() -> None:
        time.sleep(0.5)
        finish_job(
            live_server,
            job_id,
            summary={
                "achieved": {"flops": 0.5, "params": 0.52},
                "accuracy_before": 0.9303621169916435,
                "accuracy_after": 0.9211,
            },
        )

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        result = cli(live_server, "jobs", "watch", job_id)
    finally:
        thread.join()
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.stderr
    # Reductions and accuracies as a person reads them, not raw floats.
    assert "FLOPs (MACs) −50.0%  params −52.0%  accuracy 93.0% → 92.1%" in result.stderr
    assert "0.9303621169916435" not in result.stderr


def test_watch_exits_1_when_the_job_fails(live_server: LiveServer) -> None:
    job_id = submit(live_server)
    with live_server.sessions() as session:
        claim = job_store.mark_running(session, job_id, "w")
        job_store.mark_failed(session, job_id, claim.lease, "CheckpointError", "bad weights")
        session.commit()
    result = cli(live_server, "jobs", "watch", job_id)
    assert result.exit_code == 1
    assert "failed" in result.stderr and "bad weights" in result.stderr


def test_cancel(live_server: LiveServer) -> None:
    job_id = submit(live_server)
    result = cli(live_server, "jobs", "cancel", job_id)
    assert result.exit_code == 0 and "canceled" in result.stdout


def test_deployments_promote_show_rollback(live_server: LiveServer) -> None:
    first, second = submit(live_server), submit(live_server)
    digests = finish_job(live_server, first, onnx=b"one" * 40)
    finish_job(live_server, second, onnx=b"two" * 40)
    assert cli(live_server, "deployments", "promote", "cams", first).exit_code == 0
    promoted = cli(live_server, "deployments", "promote", "cams", second)
    assert promoted.exit_code == 0 and "version 2" in promoted.stdout

    shown = cli(live_server, "deployments", "show", "cams", "--json")
    body = json.loads(shown.stdout)
    assert body["current_version"] == 2 and body["manifest"]["version"] == 2

    rolled = cli(live_server, "deployments", "rollback", "cams")
    assert rolled.exit_code == 0 and f"job {first}" in rolled.stdout
    text = cli(live_server, "deployments", "show", "cams").stdout
    assert digests["model.onnx"] in text
    assert "int8" not in text  # the first job published fp32 only


def test_deployments_show_lists_the_int8_variant(live_server: LiveServer) -> None:
    job_id = submit(live_server)
    summary = {"int8": {"published": True, "accuracy": 0.93, "speed_over_fp32": 2.5}}
    digests = finish_job(live_server, job_id, int8=b"int8" * 40, summary=summary)
    assert cli(live_server, "deployments", "promote", "cams", job_id).exit_code == 0
    text = cli(live_server, "deployments", "show", "cams").stdout
    (line,) = [row for row in text.splitlines() if row.strip().startswith("int8")]
    assert digests["model.int8.onnx"] in line and "(160 bytes)" in line, line
    assert "accuracy 93.0%" in line and "2.50x fp32's speed" in line, line
    assert "cams" in cli(live_server, "deployments", "list").stdout

    refused = cli(live_server, "deployments", "promote", "cams", submit(live_server))
    assert refused.exit_code == 6 and "409" in refused.stderr


def test_watch_unknown_job_is_exit_5(live_server: LiveServer) -> None:
    result = cli(live_server, "jobs", "watch", "job_nope")
    assert result.exit_code == 5 and "404" in result.stderr


def test_architectures_lists_the_zoo_and_what_workers_reported(live_server: LiveServer) -> None:
    from infra.store import architectures

    with live_server.sessions.begin() as session:
        architectures.report(session, [("camera_net", "installed")], "gpu@cam")
    plain = cli(live_server, "architectures")
    assert plain.exit_code == 0, plain.output
    lines = plain.stdout.splitlines()
    assert lines[0].split() == ["mobilenet", "zoo"]
    assert lines[-1].split() == ["camera_net", "installed", "(reported", "by", "gpu@cam)"]
    as_json = cli(live_server, "architectures", "--json")
    names = [a["name"] for a in json.loads(as_json.stdout)["data"]]
    assert "vgg16" in names and names[-1] == "camera_net"
