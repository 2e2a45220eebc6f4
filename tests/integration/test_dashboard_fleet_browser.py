"""The deployments page's staged rollout and fleet view in a real browser (headless Debian
Chromium via Playwright) against the real API on loopback, with the state a worker and
devices would have produced written beforehand: a 50% stage, devices that benchmarked
each version, one failed install. The operator widens the stage to every device."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect, sync_playwright

from infra.store.deployments import rollout_bucket
from tests.api.api_helpers import finish_job, make_settings, seed_dataset, seed_model
from tests.support.live_server import LiveServer, live_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, LiveServer]]:
    with live_server(make_settings(tmp_path), "browser test") as server:
        yield server.url, server.admin_token, server


def _seed(url: str, admin: str, backend: LiveServer) -> dict[str, Any]:
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    shas = []
    jobs = []
    for onnx in (b"one" * 40, b"two" * 40):
        body = {
            "model_id": seed_model(backend),
            "dataset_id": seed_dataset(backend),
            "target": {"metric": "flops", "reduction": 0.5},
        }
        job_id = client.post("/v1/jobs", json=body).json()["id"]
        shas.append(finish_job(backend, job_id, onnx=onnx)["model.onnx"])
        jobs.append(job_id)
    client.put("/v1/deployments/cams", json={"job_id": jobs[0]}).raise_for_status()
    devices: list[dict[str, Any]] = []
    while len({rollout_bucket(d["id"]) < 50 for d in devices}) < 2 or len(devices) < 3:
        body = {"name": f"cam-{len(devices)}", "deployment": "cams"}
        devices.append(client.post("/v1/devices", json=body).json())
    client.put("/v1/deployments/cams", json={"job_id": jobs[1], "percent": 50}).raise_for_status()
    inside = [d for d in devices if rollout_bucket(d["id"]) < 50]
    outside = [d for d in devices if rollout_bucket(d["id"]) >= 50]

    def report(device: dict[str, Any], body: dict[str, Any]) -> None:
        auth = {"Authorization": f"Bearer {device['token']}"}
        client.post(f"/v1/devices/{device['id']}/reports", json=body, headers=auth)

    latency = {"p50_ms": 2.0, "p95_ms": 2.5, "p99_ms": 3.0}
    report(outside[0], {"sha256": shas[0], "speedup": 1.5, "latency": latency})
    failing = inside[0]
    report(
        failing,
        {"status": "install_failed", "sha256": shas[1], "stage": "load",
         "error": "onnxruntime cannot open model.onnx: opset 99"},
    )  # fmt: skip
    client.close()
    return {"failing": failing, "outside": outside[0]}


def test_operator_sees_the_stage_and_the_fleet_then_widens(
    served: tuple[str, str, LiveServer],
) -> None:
    url, admin, backend = served
    seeded = _seed(url, admin, backend)
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            page: Page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type == "error" else None,
            )
            page.on("dialog", lambda dialog: _accept(dialog, problems))
            page.goto(f"{url}/deployments")
            page.wait_for_url(re.compile(r"/login\?next="))
            page.get_by_label("Admin token", exact=True).fill(admin)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/deployments")

            card = page.locator("[data-deployment='cams']")
            expect(card.locator("[data-staged='2']")).to_have_text("v2 to 50%")
            expect(card.locator("tr[data-version='2']")).to_contain_text("staged 50%")
            fleet = card.locator("[data-fleet='cams']")
            expect(fleet.locator("[data-fleet-counts]")).to_contain_text("2 online")
            expect(fleet.locator("tr[data-fleet-version='1']")).to_contain_text("1.50×")
            failed = fleet.locator(f"[data-failed-install='{seeded['failing']['id']}']")
            expect(failed).to_contain_text("v2 failed at load")
            failing_row = page.locator(f"tr[data-device-id='{seeded['failing']['id']}']")
            expect(failing_row).to_contain_text("install of v2 failed (load)")
            expect(failing_row).to_contain_text("assigned v2")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=SCREENSHOTS / "deployments-staged.png", full_page=True)

            card.get_by_role("button", name="Widen the staged rollout of cams to 100%").click()
            expect(card.locator(".version-pill").first).to_have_text("v2")
            expect(card.locator("[data-staged]")).to_have_count(0)
            expect(card.locator("tr[data-version='2']")).to_contain_text("current")
        finally:
            browser.close()
    deployment = httpx.get(
        f"{url}/v1/deployments/cams", headers={"Authorization": f"Bearer {admin}"}
    ).json()
    assert deployment["current_version"] == 2 and deployment["rollout"] is None
    assert problems == [], problems


def _accept(dialog: Dialog, seen: list[str]) -> None:
    if "every device" not in dialog.message:
        seen.append(f"unexpected dialog: {dialog.message}")
    dialog.accept()
