"""/v1/devices: registration, reports, listings (the service side of issue 4)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.api_helpers import Api

REPORT: dict[str, Any] = {
    "version": 1,
    "sha256": "b" * 64,
    "latency": {"p50_ms": 1.5, "p95_ms": 2.0, "p99_ms": 2.5},
    "throughput_per_s": 600.0,
    "peak_rss_mb": 80.5,
    "threads": 1,
    "baseline_latency": {"p50_ms": 3.0, "p95_ms": 3.5, "p99_ms": 4.0},
    "speedup": 2.0,
    "onnxruntime": "1.31.1",  # extra keys are kept
}


def register(api: Api, name: str = "cam-17", deployment: str = "cams") -> dict[str, Any]:
    response = api.client.post(
        "/v1/devices", json={"name": name, "deployment": deployment}, headers=api.admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_register_returns_the_token_once(api: Api) -> None:
    device = register(api)
    assert device["token"].startswith("ep_") and device["deployment"] == "cams"
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
    assert row["last_report"]["speedup"] == 2.0
    assert api.client.get("/v1/deployments/other/devices", headers=api.admin).json()["count"] == 0
    filtered = api.client.get("/v1/devices", params={"deployment": "cams"}, headers=api.admin)
    assert filtered.json()["count"] == 1


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
