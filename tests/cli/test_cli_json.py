"""Every listing and action of `edgeprune` takes --json and then prints one JSON document
on stdout (messages stay on stderr), against the real API on loopback."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from edgeprune.cli import app
from infra.settings import get_settings
from infra.store.migrate import upgrade_database
from tests.api.api_helpers import finish_job, promote, seed_dataset, seed_model
from tests.support.live_server import LiveServer

runner = CliRunner()


def cli(server: LiveServer, *args: str, **kwargs: Any) -> Result:
    return runner.invoke(
        app, [*args, "--server", server.url, "--token", server.admin_token], **kwargs
    )


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _job(server: LiveServer) -> str:
    body = {
        "model_id": seed_model(server),
        "dataset_id": seed_dataset(server),
        "target": {"metric": "flops", "reduction": 0.5},
    }
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    job_id: str = httpx.post(f"{server.url}/v1/jobs", json=body, headers=headers).json()["id"]
    return job_id


def test_jobs_show_and_cancel(live_server: LiveServer) -> None:
    job_id = _job(live_server)
    shown = cli(live_server, "jobs", "show", job_id)
    assert shown.exit_code == 0 and shown.stdout.startswith(job_id) and "queued" in shown.stdout
    assert as_json(cli(live_server, "jobs", "show", job_id, "--json"))["state"] == "queued"
    canceled = as_json(cli(live_server, "jobs", "cancel", job_id, "--json"))
    assert canceled["id"] == job_id and canceled["state"] == "canceled"
    listed = as_json(cli(live_server, "jobs", "list", "--state", "canceled", "--json"))
    assert [j["id"] for j in listed["data"]] == [job_id]


def test_deployments_list_and_rollback(live_server: LiveServer) -> None:
    first, second = _job(live_server), _job(live_server)
    for job_id in (first, second):
        finish_job(live_server, job_id)
        promote(live_server, "cams", job_id)
    listed = as_json(cli(live_server, "deployments", "list", "--json"))
    assert [(d["name"], d["current_version"]) for d in listed["data"]] == [("cams", 2)]
    rolled = as_json(cli(live_server, "deployments", "rollback", "cams", "--json"))
    assert rolled["current_version"] == 1 and rolled["current_job_id"] == first


def test_devices_show_revoke_delete(live_server: LiveServer) -> None:
    job_id = _job(live_server)
    finish_job(live_server, job_id)
    promote(live_server, "cams", job_id)
    device = httpx.post(
        f"{live_server.url}/v1/devices",
        json={"name": "cam-1", "deployment": "cams"},
        headers={"Authorization": f"Bearer {live_server.admin_token}"},
    ).json()
    shown = cli(live_server, "devices", "show", device["id"])
    assert shown.exit_code == 0 and shown.stdout.startswith(device["id"])
    assert "never_seen" in shown.stdout and not shown.stdout.lstrip().startswith("{")
    assert as_json(cli(live_server, "devices", "show", device["id"], "--json"))["name"] == "cam-1"
    revoked = as_json(cli(live_server, "devices", "revoke", device["id"], "--json"))
    assert revoked["status"] == "revoked"
    deleted = as_json(cli(live_server, "devices", "delete", device["id"], "--yes", "--json"))
    assert deleted == {"id": device["id"], "deleted": True}


def test_models_upload_reads_the_old_shape_syntax_with_a_note(
    live_server: LiveServer, tmp_path: Path
) -> None:
    path = tmp_path / "net.pt"
    with zipfile.ZipFile(path, "w") as zf:  # a torch zip checkpoint, as far as the API checks
        zf.writestr("net/data.pkl", b"\x80\x02}q\x00.")
    args = ["models", "upload", str(path), "--arch", "vgg11", "--num-classes", "10", "--json"]
    result = cli(live_server, *args, "--input-shape", "1x32x32")
    assert as_json(result)["input_shape"] == [1, 32, 32]
    assert "note: --input-shape 1x32x32 is the old syntax: write --input-shape 1,32,32" in (
        result.stderr
    )
    wrong = cli(live_server, *args, "--input-shape", "32,32")
    assert wrong.exit_code == 2 and "C,H,W" in wrong.output


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    upgrade_database(url)
    monkeypatch.setenv("EDGEPRUNE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_token_create_list_revoke(database: str) -> None:
    created = as_json(runner.invoke(app, ["token", "create", "--name", "ci", "--json"]))
    assert created["name"] == "ci" and created["secret"].startswith("ep_")
    listed = as_json(runner.invoke(app, ["token", "list", "--json"]))
    assert [t["id"] for t in listed] == [created["id"]] and "secret" not in listed[0]
    revoked = as_json(runner.invoke(app, ["token", "revoke", created["id"], "--json"]))
    assert revoked == {"id": created["id"], "revoked": True}
    assert as_json(runner.invoke(app, ["token", "list", "--json"])) == []
