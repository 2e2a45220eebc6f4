"""`edgeprune deployments promote --percent|widen|rollback|fleet` and `edgeprune devices
list|show|revoke|delete` against the real API on loopback."""

from __future__ import annotations

import json
from typing import Any

import httpx
from typer.testing import CliRunner

from edgeprune.cli import app
from infra.store.deployments import rollout_bucket
from tests.api.api_helpers import finish_job, promote, seed_dataset, seed_model
from tests.support.live_server import LiveServer

runner = CliRunner()


def cli(server: LiveServer, *args: str, **kwargs: Any) -> Any:
    return runner.invoke(
        app, [*args, "--server", server.url, "--token", server.admin_token], **kwargs
    )


def published_job(server: LiveServer, onnx: bytes) -> tuple[str, str]:
    body = {
        "model_id": seed_model(server),
        "dataset_id": seed_dataset(server),
        "target": {"metric": "flops", "reduction": 0.5},
    }
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    job_id = httpx.post(f"{server.url}/v1/jobs", json=body, headers=headers).json()["id"]
    return job_id, finish_job(server, job_id, onnx=onnx)["model.onnx"]


def register(server: LiveServer, name: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/v1/devices",
        json={"name": name, "deployment": "cams"},
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_staged_promotion_widen_rollback_and_fleet(live_server: LiveServer) -> None:
    (first, _), (second, sha2) = (published_job(live_server, b) for b in (b"a" * 90, b"b" * 90))
    promote(live_server, "cams", first)
    devices = [register(live_server, f"cam-{i}") for i in range(3)]
    staged = cli(live_server, "deployments", "promote", "cams", second, "--percent", "10")
    assert staged.exit_code == 0, staged.output
    assert "version 1" in staged.stdout and "staged v2 to 10% of devices" in staged.stdout
    assert "~ v2" in staged.stdout

    widened = cli(live_server, "deployments", "widen", "cams", "--percent", "40")
    assert widened.exit_code == 0 and "staged v2 to 40%" in widened.stdout
    inside = [d for d in devices if rollout_bucket(d["id"]) < 40]
    for device in inside:  # what a device of the stage reports after installing v2
        httpx.post(
            f"{live_server.url}/v1/devices/{device['id']}/reports",
            json={"sha256": sha2, "speedup": 3.0},
            headers={"Authorization": f"Bearer {device['token']}"},
        ).raise_for_status()
    fleet = cli(live_server, "deployments", "fleet", "cams")
    assert fleet.exit_code == 0, fleet.output
    assert "current v1, v2 staged to 40%" in fleet.stdout
    assert f"devices 3: {len(inside)} online" in fleet.stdout
    body = json.loads(cli(live_server, "deployments", "fleet", "cams", "--json").stdout)
    assert {v["version"]: v["running"] for v in body["versions"]}.get(2, 0) == len(inside)

    narrower = cli(live_server, "deployments", "widen", "cams", "--percent", "20")
    assert narrower.exit_code == 6 and "422" in narrower.stderr
    rolled = cli(live_server, "deployments", "rollback", "cams")
    assert rolled.exit_code == 0 and "staged" not in rolled.stdout
    nothing = cli(live_server, "deployments", "widen", "cams")
    assert nothing.exit_code == 6 and "no staged rollout" in nothing.stderr
    assert cli(live_server, "deployments", "widen", "ghost").exit_code == 5


def test_devices_list_show_revoke_delete(live_server: LiveServer) -> None:
    job, _ = published_job(live_server, b"a" * 90)
    promote(live_server, "cams", job)
    kept, gone = register(live_server, "cam-kept"), register(live_server, "cam-gone")
    listing = cli(live_server, "devices", "list")
    assert listing.exit_code == 0, listing.output
    assert kept["id"] in listing.stdout and "never_seen" in listing.stdout
    shown = json.loads(cli(live_server, "devices", "show", kept["id"], "--json").stdout)
    assert shown["name"] == "cam-kept" and shown["assigned_version"] == 1

    revoked = cli(live_server, "devices", "revoke", gone["id"])
    assert revoked.exit_code == 0 and f"revoked {gone['id']}" in revoked.stdout
    assert gone["id"] not in cli(live_server, "devices", "list").stdout
    every = cli(live_server, "devices", "list", "--all", "--deployment", "cams").stdout
    assert gone["id"] in every and "revoked" in every

    declined = cli(live_server, "devices", "delete", gone["id"], input="n\n")
    assert declined.exit_code == 1
    assert gone["id"] in cli(live_server, "devices", "list", "--all").stdout
    deleted = cli(live_server, "devices", "delete", gone["id"], "--yes")
    assert deleted.exit_code == 0 and f"deleted {gone['id']}" in deleted.stdout
    assert gone["id"] not in cli(live_server, "devices", "list", "--all").stdout
    missing = cli(live_server, "devices", "revoke", gone["id"])
    assert missing.exit_code == 5 and "404" in missing.stderr


def test_jobs_submit_can_stage_its_promotion(live_server: LiveServer) -> None:
    result = cli(
        live_server, "jobs", "submit", "--model", seed_model(live_server), "--dataset",
        seed_dataset(live_server), "--target", "flops=0.5", "--deployment", "cams",
        "--rollout-percent", "10", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["rollout_percent"] == 10
