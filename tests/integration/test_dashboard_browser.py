"""The dashboard in a real browser against the real embedded service (`edgeprune serve`).

Headless Debian Chromium driven by Playwright: sign in, submit a small job through the form
(first with a bad target, to see the API's validation error next to its field), watch it
reach `succeeded` on the job page without a reload, check the curves and the channel charts
were drawn, promote it, and look at the jobs list and the deployments page. Screenshots go to
`test-artifacts/screenshots/` (CI keeps that folder as an artifact).

Needs `/usr/bin/chromium` (`apt-get install -y chromium`) and `playwright` (the Python
package only: `playwright install` is never run; the system browser is used).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.support.net import free_port

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_TIMEOUT_S = 120.0
JOB_TIMEOUT_MS = 240_000  # a vgg11 at width 0.125 on digits finishes in ~10 s alone
STRUCTURE_EPOCHS = 2
FINETUNE_EPOCHS = 2


@dataclass(frozen=True)
class Service:
    url: str
    token: str
    checkpoint: Path
    dataset: Path


def _env() -> dict[str, str]:
    # Shared CI cores: one thread per process keeps the job (and everyone else) predictable.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _make_inputs(folder: Path) -> tuple[Path, Path]:
    """A tiny pretrained checkpoint (vgg11 at 1/8 width) and sklearn's digits as .npz."""
    from sklearn.datasets import load_digits

    checkpoint = folder / "vgg11-digits.pt"
    subprocess.run(
        [
            sys.executable, "-m", "edgeprune", "pretrain", "--arch", "vgg11",
            "--width-mult", "0.125", "--data", "builtin:digits", "--epochs", "1",
            "--out", str(checkpoint),
        ],
        check=True, env=_env(), cwd=REPO, timeout=300, capture_output=True,
    )  # fmt: skip
    digits = load_digits()
    dataset = folder / "digits.npz"
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    np.savez(dataset, x=x, y=digits.target.astype(np.int64))
    return checkpoint, dataset


def _wait_until_up(process: subprocess.Popen[bytes], url: str, token_file: Path) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"edgeprune serve exited with code {process.returncode}")
        try:
            up = httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            up = False
        if up and token_file.is_file() and token_file.read_text().strip():
            return token_file.read_text().strip()
        time.sleep(0.3)
    raise RuntimeError(f"edgeprune serve did not answer at {url} within {STARTUP_TIMEOUT_S} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGTERM lets serve stop its api and workers in order; the group kill is the backstop.
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("dashboard-browser")
    checkpoint, dataset = _make_inputs(folder)
    data_dir = folder / "data"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "edgeprune", "serve", "--data-dir", str(data_dir),
            "--port", str(port), "--log-level", "warning",
        ],
        env=_env(), cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        token = _wait_until_up(process, url, data_dir / "admin-token")
        yield Service(url=url, token=token, checkpoint=checkpoint, dataset=dataset)
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[tuple[Page, list[str]]]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        # Expected: the 401 of the deliberately wrong token, the 422 of the bad submission.
        expected = ("status of 401", "status of 422")
        if message.type == "error" and not any(text in message.text for text in expected):
            problems.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
    try:
        yield page, problems
    finally:
        context.close()


def painted_pixels(page: Page, canvas_id: str) -> int:
    """How many pixels of a canvas are not transparent: 0 means nothing was drawn."""
    return int(
        page.evaluate(
            """(id) => {
                const canvas = document.getElementById(id);
                const context = canvas.getContext("2d");
                const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
                let n = 0;
                for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n += 1;
                return n;
            }""",
            canvas_id,
        )
    )


class DatasetData(TypedDict):
    label: str
    data: list[float | None]
    borderDash: list[int]
    pointStyle: str


class ChartData(TypedDict):
    labels: list[str]
    datasets: list[DatasetData]


def chart_data(page: Page, canvas_id: str) -> ChartData:
    """Labels and datasets of the Chart.js chart drawn on a canvas."""
    result: ChartData = page.evaluate(
        """(id) => {
            const chart = Chart.getChart(document.getElementById(id));
            return { labels: chart.data.labels,
                     datasets: chart.data.datasets.map((d) => ({
                         label: d.label, data: d.data, borderDash: d.borderDash,
                         pointStyle: d.pointStyle })) };
        }""",
        canvas_id,
    )
    return result


def sign_in(page: Page, service: Service) -> None:
    page.goto(f"{service.url}/")
    page.wait_for_url(re.compile(r"/login\?next="))  # no token yet: sent to the login page
    page.get_by_label("Admin token", exact=True).fill("ep_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#token-error")).to_contain_text("unknown or revoked")
    page.get_by_label("Admin token", exact=True).fill(service.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{service.url}/")
    assert service.token not in page.url
    expect(page.get_by_role("heading", name="Jobs", level=1)).to_be_visible()


def submit_job(page: Page, service: Service) -> str:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New job").click()
    page.wait_for_url(f"{service.url}/jobs/new")
    page.locator("#model-file").set_input_files(service.checkpoint)
    page.get_by_label("Architecture", exact=True).fill("vgg11")
    page.get_by_label("Classes of the checkpoint", exact=True).fill("10")
    page.get_by_label("Input shape (C,H,W)", exact=True).fill("1,32,32")
    page.locator("#data-file").set_input_files(service.dataset)
    page.get_by_label("Structure-learning epochs", exact=True).fill(str(STRUCTURE_EPOCHS))
    page.get_by_label("Weight-learning epochs", exact=True).fill(str(FINETUNE_EPOCHS))

    # A reduction of 1.5 is the API's to refuse; its message lands next to the field.
    page.get_by_label("Reduction", exact=True).fill("1.5")
    page.get_by_role("button", name="Submit job").click()
    error = page.locator("#target-reduction-error")
    # Under load the first upload waits for the inspect worker to start (it imports torch).
    expect(error).to_be_visible(timeout=JOB_TIMEOUT_MS)
    expect(error).to_contain_text("less than 1")
    expect(page.get_by_label("Reduction", exact=True)).to_have_attribute("aria-invalid", "true")
    assert page.url == f"{service.url}/jobs/new"
    page.screenshot(path=SCREENSHOTS / "submit-validation.png", full_page=True)

    # The uploads went through already: reuse them instead of uploading again.
    page.get_by_label("Use an uploaded model", exact=True).check()
    page.get_by_label("Use an uploaded dataset", exact=True).check()
    page.locator("#model-id").select_option(index=1)
    page.locator("#dataset-id").select_option(index=1)
    # The inspection recorded how far this network can go: the choice says so, and a
    # target past it is refused at submission, next to the field.
    expect(page.locator("#model-id option").nth(1)).to_contain_text(re.compile(r"flops ≤ 0\.\d{3}"))
    page.get_by_label("Reduction", exact=True).fill("0.999")
    page.get_by_role("button", name="Submit job").click()
    expect(error).to_contain_text("out of reach")
    assert page.url == f"{service.url}/jobs/new"
    page.get_by_label("Reduction", exact=True).fill("0.5")
    page.get_by_label("Quantize", exact=True).select_option("int8")
    page.get_by_label("Fit to the target", exact=True).select_option("cost_aware")
    page.get_by_role("button", name="Submit job").click()
    page.wait_for_url(re.compile(r"/jobs/job_[0-9a-f]+$"), timeout=60_000)
    job_id = page.url.rsplit("/", 1)[1]
    # The form's choices are the job's: what the worker will run with.
    headers = {"Authorization": f"Bearer {service.token}"}
    config = httpx.get(f"{service.url}/v1/jobs/{job_id}", headers=headers).json()["config"]
    assert (config["quantize"], config["target_fit"]) == ("int8", "cost_aware")
    return job_id


def test_operator_submits_watches_and_promotes_a_job(
    service: Service, page: tuple[Page, list[str]]
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab, problems = page
    sign_in(tab, service)
    job_id = submit_job(tab, service)

    # --- the job page follows the job live: no reload from here on ---
    tab.evaluate("window.__sameDocument = true")
    root = tab.locator("#job-root")
    expect(tab.locator("#activity li").first).to_be_visible()
    expect(root).to_have_attribute("data-state", "succeeded", timeout=JOB_TIMEOUT_MS)
    expect(root).to_have_attribute("data-report-loaded", "true", timeout=30_000)
    assert tab.evaluate("window.__sameDocument") is True, "the page was reloaded"
    expect(tab.locator("#job-state")).to_have_text("succeeded")
    expect(tab.locator("#job-progress")).to_have_attribute("aria-valuenow", "100")
    expect(tab.locator("#job-phases li[data-status=done]")).to_have_count(5)
    expect(tab.locator("#cancel-job")).to_be_hidden()

    # Curves: one point per epoch (S1..Sn, W1..Wn), and the canvases were painted.
    loss = chart_data(tab, "chart-loss")
    assert loss["labels"] == ["S1", "S2", "W1", "W2"]
    phases = tab.evaluate("Chart.getChart(document.getElementById('chart-loss')).$phasesDrawn")
    assert phases == ["structure learning", "weight learning"]
    flops = chart_data(tab, "chart-flops")
    assert any(d["label"].startswith("target") for d in flops["datasets"])
    channels = chart_data(tab, "chart-channels")
    assert len(channels["labels"]) >= 5
    # Units by role over module path: the first conv of vgg11 writes the full 32×32 map,
    # and the maps only shrink from there.
    assert channels["labels"][0] == ["conv 1 · 32×32", "features.0"]
    roles = [label[0] for label in channels["labels"]]
    assert roles == [f"conv {i} · {role.rsplit(' ', 1)[1]}" for i, role in enumerate(roles, 1)]
    sides = [int(role.rsplit("×", 1)[1]) for role in roles]
    assert sides == sorted(sides, reverse=True) and sides[-1] < 32
    expect(tab.locator("#units-body tr")).to_have_count(len(roles))
    before, after = ([float(v or 0) for v in d["data"]] for d in channels["datasets"])
    assert all(0 < a <= b for a, b in zip(after, before, strict=True)) and after != before
    allocation = chart_data(tab, "chart-allocation")
    epochs = [d["label"] for d in allocation["datasets"]]
    assert epochs == ["capacity", "after S1", "proposed in S1", "after S2", "proposed in S2"]
    kept, proposed = allocation["datasets"][1], allocation["datasets"][2]
    assert kept["borderDash"] == [] and proposed["borderDash"] != []
    assert allocation["datasets"][1]["pointStyle"] != allocation["datasets"][3]["pointStyle"]
    for canvas in (
        "chart-loss",
        "chart-accuracy",
        "chart-flops",
        "chart-channels",
        "chart-allocation",
    ):
        assert painted_pixels(tab, canvas) > 2000, canvas

    # The report's numbers and the artifacts.
    report = tab.locator("#report-table")
    expect(report).to_contain_text("FLOPs (MACs)")
    expect(tab.locator(".kpi-value").first).to_have_text(re.compile(r"^−\d+\.\d %$"))
    expect(tab.locator("[data-artifact='model.onnx']")).to_be_visible()
    # The form asked for INT8: the report says what became of it, whichever way it went.
    int8 = tab.locator("#report-body dt:text-is('INT8') + dd")
    expect(int8).to_have_text(re.compile(r"^(published, accuracy \d|not published: )"))
    with tab.expect_download() as download:
        tab.locator("[data-artifact='report.json']").click()
    assert download.value.suggested_filename == "report.json"

    # Promote it; the API now points the deployment at this job.
    tab.get_by_label("Deployment name", exact=True).fill("edge-cams")
    tab.get_by_role("button", name="Promote", exact=True).click()
    expect(tab.locator("#promote-result")).to_contain_text("edge-cams now serves version 1")
    deployment = httpx.get(
        f"{service.url}/v1/deployments/edge-cams",
        headers={"Authorization": f"Bearer {service.token}"},
        timeout=10,
    ).json()
    assert deployment["current_job_id"] == job_id
    tab.screenshot(path=SCREENSHOTS / "job.png", full_page=True)

    # The workers reported what they can build when they started: the submit form offers
    # the installed architectures (the test package's entry points) beside the zoo.
    tab.goto(f"{service.url}/jobs/new")
    installed = tab.locator('#arch-options option[value="se_resnet"]')
    expect(installed).to_have_attribute("label", "se_resnet (installed)")
    expect(tab.locator('#arch-options option[value="vgg16"]')).to_have_count(1)
    expect(tab.locator('#arch-options option[value="broken_net"]')).to_have_count(0)

    # The jobs list shows it with its numbers; the filter narrows the list in place.
    nav = tab.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Jobs", exact=True).click()
    row = tab.locator(f"#jobs-body tr[data-job-id='{job_id}']")
    expect(row).to_have_attribute("data-state", "succeeded")
    expect(row).to_contain_text("FLOPs −50 %")
    expect(row.locator(".chip").first).to_contain_text(re.compile(r"FLOPs −\d+\.\d %"))
    expect(row).to_contain_text("→")
    # Which model on which data, and how long it took.
    expect(row.locator("[data-job-context]")).to_contain_text(re.compile(r"^vgg11 · .+ on .+"))
    expect(row.locator("[data-duration]")).to_contain_text(re.compile(r"^took \d"))
    tab.screenshot(path=SCREENSHOTS / "jobs.png", full_page=True)
    tab.get_by_label("State", exact=True).select_option("failed")
    expect(tab.locator("#jobs-body")).to_contain_text("No failed jobs.")
    assert tab.url.endswith("/?state=failed")

    nav.get_by_role("link", name="Deployments").click()
    card = tab.locator("[data-deployment='edge-cams']")
    expect(card).to_contain_text("v1")
    expect(card).to_contain_text(job_id)
    expect(tab.locator("#devices-body")).to_contain_text("No devices registered yet.")
    tab.screenshot(path=SCREENSHOTS / "deployments.png", full_page=True)

    assert problems == [], problems  # no script errors, no CSP violations


def _api(service: Service) -> httpx.Client:
    return httpx.Client(
        base_url=service.url,
        headers={"Authorization": f"Bearer {service.token}"},
        timeout=httpx.Timeout(120.0),
    )


def _upload_inputs(client: httpx.Client, service: Service) -> tuple[str, str]:
    with service.checkpoint.open("rb") as checkpoint:
        response = client.post(
            "/v1/models",
            files={"file": (service.checkpoint.name, checkpoint, "application/octet-stream")},
            data={"arch": "vgg11", "num_classes": "10", "input_shape": "1,32,32"},
        )
    assert response.status_code in (201, 202), response.text
    model = response.json()
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while model["status"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.5)
        model = client.get(f"/v1/models/{model['id']}").json()
    assert model["status"] == "ready", model
    with service.dataset.open("rb") as data:
        response = client.post("/v1/datasets", files={"file": ("digits.npz", data)})
    assert response.status_code == 201, response.text
    return model["id"], response.json()["id"]


def test_operator_cancels_a_running_job(service: Service, page: tuple[Page, list[str]]) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab, problems = page
    tab.goto(f"{service.url}/login")
    tab.get_by_label("Admin token", exact=True).fill(service.token)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{service.url}/")
    tab.evaluate("window.__sameDocument = true")

    # Submitted elsewhere (the API, as CI would): the open list picks it up by itself.
    with _api(service) as client:
        model_id, dataset_id = _upload_inputs(client, service)
        body = {
            "model_id": model_id,
            "dataset_id": dataset_id,
            "target": {"metric": "params", "reduction": 0.6},
            "structure_epochs": 200,  # far longer than the test: it must be canceled
            "finetune_epochs": 1,
        }
        response = client.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
    row = tab.locator(f"#jobs-body tr[data-job-id='{job_id}']")
    expect(row).to_have_attribute("data-state", "running", timeout=JOB_TIMEOUT_MS)
    expect(row).to_contain_text("Structure learning", timeout=JOB_TIMEOUT_MS)
    expect(row).to_contain_text("Params −60 %")
    assert tab.evaluate("window.__sameDocument") is True, "the list was reloaded"

    row.get_by_role("link", name=job_id).click()
    tab.wait_for_url(f"{service.url}/jobs/{job_id}")
    root = tab.locator("#job-root")
    # Live progress: the step line names the phase, the epoch and the step as they go by.
    expect(tab.locator("#job-step")).to_contain_text(
        re.compile(r"Structure learning · epoch \d+ / 200 · step \d+"), timeout=JOB_TIMEOUT_MS
    )
    expect(root).to_have_attribute("data-state", "running")
    expect(tab.locator("#job-phases li[aria-current=step]")).to_have_text("Structure learning")
    cancel = tab.get_by_role("button", name="Cancel job")
    expect(cancel).to_be_visible()
    tab.once("dialog", lambda dialog: dialog.accept())
    cancel.click()
    expect(root).to_have_attribute("data-state", "canceled", timeout=60_000)
    expect(tab.locator("#job-canceled")).to_be_visible()
    expect(cancel).to_be_hidden()
    expect(tab.locator("#results")).to_be_hidden()  # no report or promotion for it
    expect(tab.locator("#activity")).to_contain_text("cancel requested")
    tab.screenshot(path=SCREENSHOTS / "job-canceled.png", full_page=True)
    assert problems == [], problems


def test_event_stream_parser_in_the_browser(service: Service, page: tuple[Page, list[str]]) -> None:
    """The page's own SSE parser (api.js), run by Chromium on awkwardly cut chunks: CRLF
    split between two chunks, comments, multi-line data, and an event without a blank line
    yet (it must wait for the next chunk)."""
    tab, problems = page
    tab.goto(f"{service.url}/login")
    events = tab.evaluate(
        """async () => {
            const { sseParser } = await import("/static/js/api.js");
            const parser = sseParser();
            const chunks = [
                ": ping\\r\\n\\r",
                "\\nid: 7\\r\\nevent: epoch\\r\\ndata: {\\"a\\"",
                ":1}\\r\\n\\r\\nid: 8\\ndata: one\\ndata: two\\n",
                "\\n",
                "id: 9\\rdata: x",
            ];
            return chunks.map((chunk) => parser.push(chunk));
        }"""
    )
    assert events == [
        [],
        [],
        [{"id": "7", "event": "epoch", "data": '{"a":1}'}],
        [{"id": "8", "event": "message", "data": "one\ntwo"}],
        [],
    ]
    assert problems == [], problems


def test_every_page_fits_a_phone_without_sideways_scrolling(
    service: Service, page: tuple[Page, list[str]]
) -> None:
    """At 420 px wide the page never scrolls sideways; wide tables scroll inside their card."""
    tab, problems = page
    tab.set_viewport_size({"width": 420, "height": 900})
    sign_in(tab, service)
    jobs = httpx.get(
        f"{service.url}/v1/jobs",
        headers={"Authorization": f"Bearer {service.token}"},
        timeout=10,
    ).json()["data"]
    paths = ["/", "/jobs/new", "/deployments"] + [f"/jobs/{j['id']}" for j in jobs[:1]]
    for path in paths:
        tab.goto(f"{service.url}{path}")
        tab.wait_for_load_state("load")
        tab.wait_for_timeout(1500)  # the scripts render tables and charts after load
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"{path} is {width} px wide at a 420 px viewport"
    assert problems == [], problems
