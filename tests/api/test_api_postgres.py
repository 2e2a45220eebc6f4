"""The API's queries on PostgreSQL (the scaled setup), not only SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.api_helpers import Api, finish_job, read_sse, running_api, submit_job

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_api(tmp_path: Path) -> Iterator[Api]:
    with running_api(tmp_path, "postgresql", "edgeprune_api_test") as api:
        yield api


def test_job_lifecycle_events_and_manifest_on_postgres(pg_api: Api) -> None:
    api = pg_api
    first, second = submit_job(api), submit_job(api)
    digests = finish_job(api, first["id"])
    listing = api.client.get("/v1/jobs", params={"state": "queued"}, headers=api.admin).json()
    assert [j["id"] for j in listing["data"]] == [second["id"]]

    events = read_sse(api, f"/v1/jobs/{first['id']}/events", {"Last-Event-ID": "1"})
    assert [e["id"] for e in events] == ["2", "3", "4"]

    promoted = api.client.put(
        "/v1/deployments/cams", json={"job_id": first["id"]}, headers=api.admin
    )
    assert promoted.status_code == 201, promoted.text
    manifest = api.client.get("/v1/deployments/cams/manifest", headers=api.admin)
    assert manifest.json()["sha256"] == digests["model.onnx"]
    again = api.client.get(
        "/v1/deployments/cams/manifest",
        headers={**api.admin, "If-None-Match": manifest.headers["etag"]},
    )
    assert again.status_code == 304

    device = api.client.post(
        "/v1/devices", json={"name": "cam", "deployment": "cams"}, headers=api.admin
    ).json()
    device_auth = {"Authorization": f"Bearer {device['token']}"}
    blob = api.client.get(f"/v1/artifacts/{digests['model.onnx']}", headers=device_auth)
    assert blob.status_code == 200
    metrics = api.client.get("/metrics", headers=api.admin).text
    assert 'edgeprune_jobs{state="succeeded"} 1.0' in metrics


def test_device_lifecycle_staged_rollout_and_fleet_on_postgres(pg_api: Api) -> None:
    """The routes of issue 15 on PostgreSQL: the registration rules (partial unique index),
    the per-device manifest during a stage (the CASE join), widen, and the fleet summary."""
    from infra.store.deployments import rollout_bucket

    api = pg_api
    jobs = [submit_job(api)["id"] for _ in range(2)]
    digests = [finish_job(api, job, onnx=job.encode() * 10) for job in jobs]
    api.client.put("/v1/deployments/cams", json={"job_id": jobs[0]}, headers=api.admin)
    ghost = api.client.post(
        "/v1/devices", json={"name": "cam", "deployment": "ghost"}, headers=api.admin
    )
    assert ghost.status_code == 422

    def register(name: str, force: bool = False) -> Any:
        body = {"name": name, "deployment": "cams", "force": force}
        return api.client.post("/v1/devices", json=body, headers=api.admin)

    first = register("cam-0")
    assert first.status_code == 201, first.text
    assert register("cam-0").status_code == 409
    forced = register("cam-0", force=True)
    assert forced.status_code == 201 and forced.json()["replaced"] == first.json()["id"]
    # the replacement gets a fresh id, so the stage's split is drawn only after it
    devices = [forced.json()]
    while len(devices) < 4 or len({rollout_bucket(d["id"]) < 50 for d in devices}) < 2:
        response = register(f"cam-{len(devices)}")
        assert response.status_code == 201, response.text
        devices.append(response.json())

    staged = api.client.put(
        "/v1/deployments/cams", json={"job_id": jobs[1], "percent": 50}, headers=api.admin
    )
    assert staged.json()["rollout"]["percent"] == 50
    for device in devices:
        auth = {"Authorization": f"Bearer {device['token']}"}
        manifest = api.client.get("/v1/deployments/cams/manifest", headers=auth).json()
        expected = 2 if rollout_bucket(device["id"]) < 50 else 1
        assert manifest["version"] == expected
        sha = digests[expected - 1]["model.onnx"]
        assert manifest["sha256"] == sha
        report = {"sha256": sha, "speedup": 2.0 * expected}
        posted = api.client.post(f"/v1/devices/{device['id']}/reports", json=report, headers=auth)
        assert posted.status_code == 201 and posted.json()["version"] == expected
    fleet = api.client.get("/v1/deployments/cams/fleet", headers=api.admin).json()
    assert fleet["devices"] == len(devices) and fleet["revoked"] == 1
    assert {v["version"]: v["median_speedup"] for v in fleet["versions"]} == {2: 4.0, 1: 2.0}

    widened = api.client.post("/v1/deployments/cams/widen", headers=api.admin).json()
    assert widened["current_version"] == 2 and widened["rollout"] is None
    revoked = api.client.post(f"/v1/devices/{devices[1]['id']}/revoke", headers=api.admin)
    assert revoked.json()["status"] == "revoked"
    assert (
        api.client.delete(f"/v1/devices/{devices[1]['id']}", headers=api.admin).status_code == 204
    )
