"""/v1/devices: registration, reports, listings, revoke and delete (issues 4 and 15)."""

from __future__ import annotations

from typing import Any

import pytest

from infra.store.models import Deployment
from tests.api.api_helpers import Api, finish_job, submit_job

REPORT: dict[str, Any] = {
    "version": 1,
    "latency": {"p50_ms": 1.5, "p95_ms": 2.0, "p99_ms": 2.5},
    "throughput_per_s": 600.0,
    "peak_rss_mb": 80.5,
    "threads": 1,
    "baseline_latency": {"p50_ms": 3.0, "p95_ms": 3.5, "p99_ms": 4.0},
    "speedup": 2.0,
    "onnxruntime": "1.31.1",  # extra keys are kept
}


def publish(api: Api, deployment: str = "cams", onnx: bytes = b"onnx" * 100) -> str:
    """Promote a new succeeded job to `deployment`; returns its model's sha256."""
    job = submit_job(api)
    digests = finish_job(api, job["id"], onnx=onnx)
    response = api.client.put(
        f"/v1/deployments/{deployment}", json={"job_id": job["id"]}, headers=api.admin
    )
    assert response.status_code in (200, 201), response.text
    return digests["model.onnx"]


def register(
    api: Api, name: str = "cam-17", deployment: str = "cams", **extra: Any
) -> dict[str, Any]:
    with api.sessions() as session:
        if session.get(Deployment, deployment) is None:
            publish(api, deployment)
    response = api.client.post(
        "/v1/devices", json={"name": name, "deployment": deployment, **extra}, headers=api.admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_register_returns_the_token_once(api: Api) -> None:
    device = register(api)
    assert device["token"].startswith("ep_") and device["deployment"] == "cams"
    assert device["status"] == "never_seen" and device["assigned_version"] == 1
    listing = api.client.get("/v1/devices", headers=api.admin).json()
    assert listing["count"] == 1
    assert "token" not in listing["data"][0]


def test_register_validates(api: Api) -> None:
    for body, loc in (
        ({"name": "x", "deployment": "Bad Name"}, ["body", "deployment"]),
        ({"deployment": "cams"}, ["body", "name"]),
    ):
        response = api.client.post("/v1/devices", json=body, headers=api.admin)
        assert response.status_code == 422
        assert response.json()["errors"][0]["loc"] == loc


def test_device_posts_its_own_report(api: Api) -> None:
    device = register(api)
    headers = {"Authorization": f"Bearer {device['token']}"}
    response = api.client.post(f"/v1/devices/{device['id']}/reports", json=REPORT, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["data"]["onnxruntime"] == "1.31.1"

    listing = api.client.get("/v1/deployments/cams/devices", headers=api.admin).json()
    row = listing["data"][0]
    assert row["current_version"] == 1 and row["last_seen_at"] is not None
    assert row["status"] == "online"
    assert row["last_report"]["speedup"] == 2.0
    assert api.client.get("/v1/deployments/other/devices", headers=api.admin).json()["count"] == 0
    filtered = api.client.get("/v1/devices", params={"deployment": "cams"}, headers=api.admin)
    assert filtered.json()["count"] == 1


def test_an_int8_report_carries_what_quantization_bought(api: Api) -> None:
    device = register(api)
    headers = {"Authorization": f"Bearer {device['token']}"}
    report = {
        **REPORT,
        "variant": "int8",
        "fp32_latency": {"p50_ms": 4.0, "p95_ms": 4.5, "p99_ms": 5.0},
        "speedup_vs_fp32": 2.5,
    }
    response = api.client.post(f"/v1/devices/{device['id']}/reports", json=report, headers=headers)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert data["variant"] == "int8" and data["speedup_vs_fp32"] == 2.5
    assert data["fp32_latency"]["p50_ms"] == 4.0


def test_device_cannot_report_for_another_device(api: Api) -> None:
    mine = register(api, "a")
    theirs = register(api, "b")
    headers = {"Authorization": f"Bearer {mine['token']}"}
    response = api.client.post(f"/v1/devices/{theirs['id']}/reports", json=REPORT, headers=headers)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"latency": {"p50_ms": 3.0, "p95_ms": 2.0, "p99_ms": 4.0}}, ["body", "latency"]),
        (
            {"latency": {"p50_ms": -1.0, "p95_ms": 2.0, "p99_ms": 4.0}},
            ["body", "latency", "p50_ms"],
        ),
        ({"speedup": 0}, ["body", "speedup"]),
        ({"version": 0}, ["body", "version"]),
        ({"sha256": "xyz"}, ["body", "sha256"]),
        ({"version": 7}, ["body", "version"]),  # the deployment has no version 7
        ({"sha256": "b" * 64}, ["body", "version"]),  # not an artifact of version 1
        ({"status": "exploded"}, ["body", "status"]),
        ({"status": "install_failed"}, ["body"]),  # which stage?
        ({"stage": "load"}, ["body"]),  # a stage belongs to failures only
        ({"variant": "int4"}, ["body", "variant"]),
        ({"speedup_vs_fp32": -1.0}, ["body", "speedup_vs_fp32"]),
        (
            {"fp32_latency": {"p50_ms": 5.0, "p95_ms": 1.0, "p99_ms": 6.0}},
            ["body", "fp32_latency"],
        ),
    ],
)
def test_bad_reports_are_422(api: Api, change: dict[str, Any], loc: list[Any]) -> None:
    device = register(api)
    response = api.client.post(
        f"/v1/devices/{device['id']}/reports", json={**REPORT, **change}, headers=api.admin
    )
    assert response.status_code == 422, response.text
    assert loc in [e["loc"] for e in response.json()["errors"]]


def test_report_for_unknown_device_is_404(api: Api) -> None:
    response = api.client.post("/v1/devices/dev_nope/reports", json=REPORT, headers=api.admin)
    assert response.status_code == 404


def test_device_detail_and_report_history(api: Api) -> None:
    device = register(api)
    publish(api, onnx=b"second" * 10)
    for version in (1, 2):
        api.client.post(
            f"/v1/devices/{device['id']}/reports",
            json={**REPORT, "version": version},
            headers=api.admin,
        )
    shown = api.client.get(f"/v1/devices/{device['id']}", headers=api.admin).json()
    assert shown["current_version"] == 2 and "token" not in shown
    reports = api.client.get(f"/v1/devices/{device['id']}/reports", headers=api.admin).json()
    assert reports["count"] == 2
    assert [r["version"] for r in reports["data"]] == [2, 1]
    assert api.client.get("/v1/devices/dev_nope", headers=api.admin).status_code == 404
    device_auth = {"Authorization": f"Bearer {device['token']}"}
    assert api.client.get(f"/v1/devices/{device['id']}", headers=device_auth).status_code == 403


def _auth(device: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {device['token']}"}


def test_registering_for_an_unknown_deployment_is_refused(api: Api) -> None:
    response = api.client.post(
        "/v1/devices", json={"name": "cam", "deployment": "ghost"}, headers=api.admin
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:edgeprune:problem:invalid-reference"
    assert problem["errors"][0]["loc"] == ["body", "deployment"]
    assert "no deployment named 'ghost'" in problem["detail"]
    assert api.client.get("/v1/devices", headers=api.admin).json()["count"] == 0
    # A job that will publish there (queued, running) makes the name known.
    submit_job(api, deployment="ghost")
    later = api.client.post(
        "/v1/devices", json={"name": "cam", "deployment": "ghost"}, headers=api.admin
    )
    assert later.status_code == 201, later.text
    assert later.json()["assigned_version"] is None


def test_a_live_name_is_409_and_force_revokes_the_old_device(api: Api) -> None:
    old = register(api, "cam-1")
    taken = api.client.post(
        "/v1/devices", json={"name": "cam-1", "deployment": "cams"}, headers=api.admin
    )
    assert taken.status_code == 409
    assert taken.json()["type"] == "urn:edgeprune:problem:device-name-taken"
    assert old["id"] in taken.json()["detail"]

    new = register(api, "cam-1", force=True)
    assert new["replaced"] == old["id"] and new["id"] != old["id"]
    assert api.client.get("/v1/deployments/cams/manifest", headers=_auth(old)).status_code == 401
    assert api.client.get("/v1/deployments/cams/manifest", headers=_auth(new)).status_code == 200
    live = api.client.get("/v1/devices", headers=api.admin).json()
    assert [d["id"] for d in live["data"]] == [new["id"]]
    every = api.client.get("/v1/devices?include_revoked=true", headers=api.admin).json()
    statuses = {d["id"]: d["status"] for d in every["data"]}
    assert statuses == {new["id"]: "online", old["id"]: "revoked"}


def test_revoke_then_delete(api: Api) -> None:
    device = register(api)
    api.client.post(f"/v1/devices/{device['id']}/reports", json=REPORT, headers=_auth(device))
    revoked = api.client.post(f"/v1/devices/{device['id']}/revoke", headers=api.admin)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoked_at"]
    assert revoked.json()["assigned_version"] is None
    refused = api.client.get("/v1/deployments/cams/manifest", headers=_auth(device))
    assert refused.status_code == 401
    again = api.client.post(f"/v1/devices/{device['id']}/revoke", headers=api.admin)
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"]
    # the name is free again once its device is revoked
    assert register(api)["replaced"] is None

    deleted = api.client.delete(f"/v1/devices/{device['id']}", headers=api.admin)
    assert deleted.status_code == 204 and deleted.content == b""
    assert api.client.get(f"/v1/devices/{device['id']}", headers=api.admin).status_code == 404
    for method in ("POST", "DELETE"):
        path = f"/v1/devices/{device['id']}" + ("/revoke" if method == "POST" else "")
        gone = api.client.request(method, path, headers=api.admin)
        assert gone.status_code == 404
        assert gone.json()["type"] == "urn:edgeprune:problem:device-not-found"


def test_lifecycle_routes_need_an_admin_token(api: Api) -> None:
    device = register(api)
    for method, path in (
        ("POST", f"/v1/devices/{device['id']}/revoke"),
        ("DELETE", f"/v1/devices/{device['id']}"),
    ):
        assert api.client.request(method, path, headers=_auth(device)).status_code == 403
        assert api.client.request(method, path).status_code == 401


def test_reports_are_tied_to_the_version_that_published_the_sha256(api: Api) -> None:
    device = register(api)
    sha1 = api.client.get("/v1/deployments/cams/manifest", headers=api.admin).json()["sha256"]
    sha2 = publish(api, onnx=b"second" * 10)
    body = {k: v for k, v in REPORT.items() if k != "version"}
    for sha, version in ((sha2, 2), (sha1, 1)):
        posted = api.client.post(
            f"/v1/devices/{device['id']}/reports",
            json={**body, "sha256": sha},
            headers=_auth(device),
        )
        assert posted.status_code == 201, posted.text
        assert posted.json()["version"] == version and posted.json()["data"]["version"] == version
    unknown = api.client.post(
        f"/v1/devices/{device['id']}/reports",
        json={**body, "sha256": "d" * 64},
        headers=_auth(device),
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "sha256"]


def test_install_failures_are_recorded_without_changing_the_running_version(api: Api) -> None:
    device = register(api)
    api.client.post(f"/v1/devices/{device['id']}/reports", json=REPORT, headers=_auth(device))
    sha2 = publish(api, onnx=b"second" * 10)
    failure = {
        "status": "install_failed",
        "version": 2,
        "sha256": sha2,
        "stage": "load",
        "error": "onnxruntime cannot open model.onnx: opset 99",
    }
    posted = api.client.post(
        f"/v1/devices/{device['id']}/reports", json=failure, headers=_auth(device)
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["status"] == "install_failed"
    shown = api.client.get(f"/v1/devices/{device['id']}", headers=api.admin).json()
    assert shown["current_version"] == 1 and shown["assigned_version"] == 2
    assert shown["last_report"]["speedup"] == 2.0  # still the last benchmark
    assert shown["install_failure"]["version"] == 2
    assert shown["install_failure"]["stage"] == "load"
    assert "opset 99" in shown["install_failure"]["error"]
    fixed = api.client.post(
        f"/v1/devices/{device['id']}/reports",
        json={**REPORT, "version": 2, "sha256": sha2},
        headers=_auth(device),
    )
    assert fixed.status_code == 201
    shown = api.client.get(f"/v1/devices/{device['id']}", headers=api.admin).json()
    assert shown["install_failure"] is None and shown["current_version"] == 2
