"""Staged rollouts over REST (promote with a percentage, widen, rollback), the manifest each
device gets during a stage, and the fleet summary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from infra.store.deployments import rollout_bucket
from infra.store.models import Device, utcnow
from service.api.main import create_app
from tests.api.api_helpers import (
    Api,
    finish_job,
    job_body,
    make_settings,
    seed_dataset,
    seed_model,
    submit_job,
)

DEVICES = 40


def succeeded_job(api: Api, onnx: bytes) -> tuple[str, str]:
    job = submit_job(api)
    return job["id"], finish_job(api, job["id"], onnx=onnx)["model.onnx"]


def promote(api: Api, job_id: str, **extra: Any) -> dict[str, Any]:
    response = api.client.put(
        "/v1/deployments/cams", json={"job_id": job_id, **extra}, headers=api.admin
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def fleet_of(
    api: Api, count: int = DEVICES, *, percent: int = 50, each: int = 0
) -> list[dict[str, Any]]:
    """`count` devices, and more until at least `each` fall inside and outside a `percent`
    stage (device ids are random; this keeps the tests independent of the draw)."""
    devices: list[dict[str, Any]] = []

    def short() -> bool:
        inside = sum(rollout_bucket(d["id"]) < percent for d in devices)
        return min(inside, len(devices) - inside) < each

    while len(devices) < count or short():
        assert len(devices) < 500, "the rollout buckets are not spread"
        response = api.client.post(
            "/v1/devices",
            json={"name": f"cam-{len(devices)}", "deployment": "cams"},
            headers=api.admin,
        )
        assert response.status_code == 201, response.text
        devices.append(response.json())
    return devices


def manifest_version(api: Api, device: dict[str, Any]) -> int:
    response = api.client.get(
        "/v1/deployments/cams/manifest", headers={"Authorization": f"Bearer {device['token']}"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"].startswith(f'"{response.json()["version"]}-')
    version: int = response.json()["version"]
    return version


def test_a_staged_promotion_reaches_only_its_share_until_widened(api: Api) -> None:
    stable, _ = succeeded_job(api, b"one" * 50)
    staged, _ = succeeded_job(api, b"two" * 50)
    promote(api, stable)
    devices = fleet_of(api, percent=25, each=1)
    body = promote(api, staged, percent=25)
    assert body["current_version"] == 1 and body["current_job_id"] == stable
    assert body["rollout"] == {"version": 2, "job_id": staged, "percent": 25}

    inside = {d["id"] for d in devices if rollout_bucket(d["id"]) < 25}
    assert {d["id"] for d in devices if manifest_version(api, d) == 2} == inside
    admin = api.client.get("/v1/deployments/cams/manifest", headers=api.admin).json()
    assert admin["version"] == 1  # an admin sees the stable version
    listed = api.client.get("/v1/devices?limit=1000", headers=api.admin).json()["data"]
    assert {d["id"] for d in listed if d["assigned_version"] == 2} == inside

    widened = api.client.post(
        "/v1/deployments/cams/widen", json={"percent": 60}, headers=api.admin
    ).json()
    assert widened["rollout"]["percent"] == 60
    at_60 = {d["id"] for d in devices if manifest_version(api, d) == 2}
    assert inside < at_60

    narrower = api.client.post(
        "/v1/deployments/cams/widen", json={"percent": 10}, headers=api.admin
    )
    assert narrower.status_code == 422
    assert narrower.json()["errors"][0]["loc"] == ["body", "percent"]

    done = api.client.post("/v1/deployments/cams/widen", headers=api.admin).json()
    assert done["current_version"] == 2 and done["rollout"] is None
    assert {manifest_version(api, d) for d in devices} == {2}
    nothing = api.client.post("/v1/deployments/cams/widen", headers=api.admin)
    assert nothing.status_code == 409


def test_rollback_during_a_stage_returns_every_device_to_the_stable_version(api: Api) -> None:
    stable, _ = succeeded_job(api, b"one" * 50)
    staged, _ = succeeded_job(api, b"two" * 50)
    promote(api, stable)
    devices = fleet_of(api, 20, each=1)
    promote(api, staged, percent=50)
    etags = {}
    for device in devices:
        auth = {"Authorization": f"Bearer {device['token']}"}
        etags[device["id"]] = api.client.get("/v1/deployments/cams/manifest", headers=auth).headers[
            "etag"
        ]
    body = api.client.post("/v1/deployments/cams/rollback", headers=api.admin).json()
    assert body["current_version"] == 1 and body["rollout"] is None
    for device in devices:
        auth = {"Authorization": f"Bearer {device['token']}", "If-None-Match": etags[device["id"]]}
        answer = api.client.get("/v1/deployments/cams/manifest", headers=auth)
        if rollout_bucket(device["id"]) < 50:
            assert answer.status_code == 200 and answer.json()["version"] == 1
        else:
            assert answer.status_code == 304  # never left version 1


def test_staging_needs_a_stable_version_and_a_valid_percentage(api: Api) -> None:
    job, _ = succeeded_job(api, b"one" * 50)
    first = api.client.put(
        "/v1/deployments/cams", json={"job_id": job, "percent": 10}, headers=api.admin
    )
    assert first.status_code == 409
    assert "first promotion goes to every device" in first.json()["detail"]
    for percent in (0, 101, "10"):
        bad = api.client.put(
            "/v1/deployments/cams", json={"job_id": job, "percent": percent}, headers=api.admin
        )
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["loc"] == ["body", "percent"]
    assert api.client.post("/v1/deployments/ghost/widen", headers=api.admin).status_code == 404


def _report(api: Api, device: dict[str, Any], **fields: Any) -> None:
    response = api.client.post(
        f"/v1/devices/{device['id']}/reports",
        json=fields,
        headers={"Authorization": f"Bearer {device['token']}"},
    )
    assert response.status_code == 201, response.text


def _latency(p50: float) -> dict[str, float]:
    return {"p50_ms": p50, "p95_ms": p50 + 1, "p99_ms": p50 + 2}


def test_fleet_summary(api: Api) -> None:
    stable, sha1 = succeeded_job(api, b"one" * 50)
    staged, sha2 = succeeded_job(api, b"two" * 50)
    promote(api, stable)
    devices = fleet_of(api, 0, each=3)
    promote(api, staged, percent=50)
    inside = [d for d in devices if rollout_bucket(d["id"]) < 50]
    outside = [d for d in devices if rollout_bucket(d["id"]) >= 50]
    # outside the stage: three benchmarks of v1 (one device reported twice: its latest counts)
    _report(api, outside[0], version=1, sha256=sha1, speedup=5.0, latency=_latency(9.0))
    for device, speedup, p50 in ((outside[0], 2.0, 4.0), (outside[1], 3.0, 3.0)):
        _report(api, device, version=1, sha256=sha1, speedup=speedup, latency=_latency(p50))
    _report(api, outside[2], version=1, sha256=sha1, speedup=4.0, latency=_latency(2.0))
    # inside: two ran v2, one failed to install it
    _report(api, inside[0], version=1, sha256=sha1, speedup=2.0, latency=_latency(4.0))
    _report(api, inside[0], version=2, sha256=sha2, speedup=6.0, latency=_latency(1.0))
    _report(
        api, inside[1], version=2, sha256=sha2, speedup=8.0, latency=_latency(0.5),
        variant="int8", speedup_vs_fp32=2.5, fp32_latency=_latency(1.25),
    )  # fmt: skip
    _report(
        api, inside[2], status="install_failed", version=2, sha256=sha2, stage="checksum",
        error="sha256 differs",
    )  # fmt: skip
    revoked = api.client.post(
        "/v1/devices", json={"name": "retired", "deployment": "cams"}, headers=api.admin
    ).json()
    api.client.post(f"/v1/devices/{revoked['id']}/revoke", headers=api.admin)

    summary = api.client.get("/v1/deployments/cams/fleet", headers=api.admin).json()
    assert summary["current_version"] == 1
    assert summary["rollout"] == {"version": 2, "job_id": staged, "percent": 50}
    live = len(devices)
    assert summary["devices"] == live and summary["revoked"] == 1
    assert summary["online"] == 6 and summary["never_seen"] == live - 6 and summary["stale"] == 0
    by_version = {v["version"]: v for v in summary["versions"]}
    assert [v["version"] for v in summary["versions"]] == [2, 1]
    v1, v2 = by_version[1], by_version[2]
    assert (v2["role"], v2["assigned"], v1["role"], v1["assigned"]) == (
        "staged", len(inside), "current", len(outside),
    )  # fmt: skip
    assert (v1["running"], v1["online"], v1["benchmarked"]) == (3, 3, 4)
    assert (v2["running"], v2["online"], v2["benchmarked"]) == (2, 2, 2)
    assert v1["median_speedup"] == 2.5 and v1["median_latency_p50_ms"] == 3.5
    assert v2["median_speedup"] == 7.0 and v2["median_latency_p99_ms"] == 2.75
    assert v1["median_speedup_vs_fp32"] is None and v2["median_speedup_vs_fp32"] == 2.5
    assert (v1["install_failures"], v2["install_failures"]) == (0, 1)
    [failed] = summary["failed_installs"]
    assert failed["device_id"] == inside[2]["id"] and failed["stage"] == "checksum"
    assert failed["version"] == 2 and failed["error"] == "sha256 differs"
    assert api.client.get("/v1/deployments/ghost/fleet", headers=api.admin).status_code == 404
    assert (
        api.client.get(
            "/v1/deployments/cams/fleet", headers={"Authorization": f"Bearer {devices[0]['token']}"}
        ).status_code
        == 403
    )


def test_devices_go_stale_after_the_configured_silence(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, device_stale_after_s=60.0)
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token()
        job, _ = succeeded_job(api, b"one" * 50)
        promote(api, job)
        quiet, loud = fleet_of(api, 2)
        manifest_version(api, quiet)
        manifest_version(api, loud)

        with api.sessions.begin() as session:
            session.execute(
                update(Device)
                .where(Device.id == quiet["id"])
                .values(last_seen_at=utcnow() - timedelta(seconds=61))
            )
        listed = client.get("/v1/devices", headers=api.admin).json()["data"]
        summary = client.get("/v1/deployments/cams/fleet", headers=api.admin).json()
    assert {d["id"]: d["status"] for d in listed} == {quiet["id"]: "stale", loud["id"]: "online"}
    assert (summary["online"], summary["stale"], summary["stale_after_s"]) == (1, 1, 60.0)


def test_a_job_can_ask_for_a_staged_promotion(api: Api) -> None:
    staged = submit_job(api, deployment="cams", rollout_percent=10)
    assert staged["config"]["rollout_percent"] == 10
    assert submit_job(api)["config"]["rollout_percent"] == 100
    response = api.client.post(
        "/v1/jobs",
        json={**job_body(seed_model(api), seed_dataset(api)), "rollout_percent": 10},
        headers=api.admin,
    )
    assert response.status_code == 422
    assert "name it" in response.json()["detail"]
