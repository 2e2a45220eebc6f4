"""The job page's charts and unit table in a real browser (headless Debian Chromium via
Playwright) against the real API on loopback, over the seeded store of the dashboard tests:
no worker runs, so the page is drawn from the same stored events and reports every time.

Checked: epochs are whole ticks named S1 … W2 with the two phases marked over the curves,
units are labelled by role over their module path (and by position for a report written
before roles existed, or while a job runs), and no job page scrolls sideways at 420 px.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from infra.settings import Settings
from tests.dashboard.seed import ROLES, UNITS, Seeded, seed_store
from tests.support.live_server import LiveServer, live_server

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[LiveServer, Seeded]]:
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'dashboard.db'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        artifacts_url=str(tmp_path / "artifacts"),
        reconcile_interval_s=3600.0,  # the reconciler must not touch the seeded jobs
    )
    with live_server(settings, "job page browser test") as server:
        yield server, seed_store(server.sessions, server.storage)


@pytest.fixture
def page(served: tuple[LiveServer, Seeded]) -> Iterator[tuple[Page, list[str]]]:
    server, _ = served
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
            tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            tab.goto(f"{server.url}/login")
            tab.get_by_label("Admin token", exact=True).fill(server.admin_token)
            tab.get_by_role("button", name="Sign in").click()
            tab.wait_for_url(f"{server.url}/")
            yield tab, problems
        finally:
            browser.close()


def chart(tab: Page, canvas_id: str) -> dict[str, Any]:
    """What a Chart.js chart shows: its labels, series, drawn ticks and phase spans."""
    result: dict[str, Any] = tab.evaluate(
        """(id) => {
            const chart = Chart.getChart(document.getElementById(id));
            return {
                labels: chart.data.labels,
                datasets: chart.data.datasets.map((d) => d.label),
                xTicks: chart.scales.x.ticks.map((t) => chart.scales.x.getLabelForValue(t.value)),
                yTicks: chart.scales.y.ticks.map((t) => t.value),
                phases: chart.$phases || null,
                phasesDrawn: chart.$phasesDrawn || null,
                // What the tooltip of the second label would be titled.
                tooltipTitle: chart.options.plugins.tooltip.callbacks.title([{ dataIndex: 1 }]),
            };
        }""",
        canvas_id,
    )
    return result


def open_job(tab: Page, url: str, job_id: str, *, report: bool) -> None:
    tab.goto(f"{url}/jobs/{job_id}")
    root = tab.locator("#job-root")
    if report:
        expect(root).to_have_attribute("data-report-loaded", "true")
    else:
        expect(root).to_have_attribute("data-allocation-epochs", "3")
    tab.wait_for_timeout(200)  # redraws are coalesced for 50 ms


def test_label_helpers(served: tuple[LiveServer, Seeded], page: tuple[Page, list[str]]) -> None:
    """job-labels.js on its own: epoch names, phase spans and role fallbacks."""
    tab, problems = page
    result = tab.evaluate(
        """async () => {
            const m = await import("/static/js/job-labels.js");
            const rows = [["structure_learning", 1], ["structure_learning", 2],
                          ["weight_learning", 1]].map(([phase, epoch]) => ({ phase, epoch }));
            return {
                labels: rows.map(m.epochLabel),
                title: m.epochTitle(rows[2]),
                spans: m.phaseSpans(rows),
                roles: m.unitRoles(["a", "b", "c"], [{ name: "b", role: "conv 2 · 8×8" }]),
                ticks: m.unitTicks(["a"], null),
            };
        }"""
    )
    assert result["labels"] == ["S1", "S2", "W1"]
    assert result["title"] == "Weight learning, epoch 1"
    assert result["spans"] == [
        {"phase": "structure_learning", "name": "structure learning", "short": "S", "from": 0,
         "to": 1},
        {"phase": "weight_learning", "name": "weight learning", "short": "W", "from": 2, "to": 2},
    ]  # fmt: skip
    assert result["roles"] == ["unit 1", "conv 2 · 8×8", "unit 3"]
    assert result["ticks"] == [["unit 1", "a"]]
    assert problems == [], problems


def test_curves_tick_whole_epochs_and_mark_the_phases(
    served: tuple[LiveServer, Seeded], page: tuple[Page, list[str]]
) -> None:
    (server, seeded), (tab, problems) = served, page
    open_job(tab, server.url, seeded.succeeded, report=True)
    epochs = ["S1", "S2", "S3", "W1", "W2"]
    for canvas in ("chart-loss", "chart-accuracy", "chart-flops"):
        drawn = chart(tab, canvas)
        assert drawn["labels"] == epochs and drawn["xTicks"] == epochs, canvas
        assert drawn["phasesDrawn"] == ["structure learning", "weight learning"], canvas
        assert [(p["name"], p["from"], p["to"]) for p in drawn["phases"]] == [
            ("structure learning", 0, 2),
            ("weight learning", 3, 4),
        ], canvas
    flops = chart(tab, "chart-flops")
    assert flops["datasets"][0] == "FLOPs (MACs)"
    assert flops["tooltipTitle"] == "Structure learning, epoch 2"
    # Channel counts are whole numbers on both structure charts.
    for canvas in ("chart-channels", "chart-allocation"):
        ticks = chart(tab, canvas)["yTicks"]
        assert ticks and all(float(t).is_integer() for t in ticks), (canvas, ticks)
    expect(tab.locator(".kpi-label").first).to_have_text("FLOPs (MACs) removed")
    expect(tab.locator("#report-body dt:text-is('Target') + dd")).to_have_text(
        "FLOPs −50 % (the floors allow at most −91.2 %)"
    )
    expect(tab.locator("#report-body dt:text-is('INT8') + dd")).to_have_text(
        "published, accuracy 90.00 % (fp32 90.50 %), 1.84× fp32's speed on the worker's CPU, "
        "plan all_int8 (the faster of 2)"
    )
    assert problems == [], problems


def test_units_are_labelled_by_role(
    served: tuple[LiveServer, Seeded], page: tuple[Page, list[str]]
) -> None:
    (server, seeded), (tab, problems) = served, page
    open_job(tab, server.url, seeded.succeeded, report=True)
    ticks = [[role, name] for role, name in zip(ROLES, UNITS, strict=True)]
    assert chart(tab, "chart-channels")["labels"] == ticks
    allocation = chart(tab, "chart-allocation")
    assert allocation["labels"] == ticks
    assert allocation["datasets"][:3] == ["capacity", "after S1", "proposed in S1"]
    for canvas in ("chart-channels", "chart-allocation"):
        assert chart(tab, canvas)["tooltipTitle"] == f"{ROLES[1]} ({UNITS[1]})", canvas
    rows = tab.locator("#units-body tr")
    expect(rows).to_have_count(len(UNITS))
    expect(rows.first.locator("th")).to_have_text(ROLES[0])
    expect(rows.first).to_contain_text("features.0")
    expect(tab.locator("#units-body tr[data-unit='features.8']")).to_contain_text("72 %")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=SCREENSHOTS / "job-units.png", full_page=True)

    # A report written before units had roles: labelled by position, still drawn.
    open_job(tab, server.url, seeded.older_succeeded, report=True)
    positions = [f"unit {i}" for i in range(1, len(UNITS) + 1)]
    labels = chart(tab, "chart-channels")["labels"]
    assert labels == [[p, n] for p, n in zip(positions, UNITS, strict=True)]
    expect(tab.locator("#units-body tr th")).to_have_text(positions)

    # A running job has no report yet: the live allocation, by position too.
    open_job(tab, server.url, seeded.running, report=False)
    drawn = chart(tab, "chart-channels")
    assert drawn["labels"][0] == ["unit 1", "features.0"]
    assert drawn["datasets"] == ["active after S3"]
    expect(tab.locator("#units-wrap")).to_be_hidden()
    assert problems == [], problems


def test_job_pages_fit_a_phone(
    served: tuple[LiveServer, Seeded], page: tuple[Page, list[str]]
) -> None:
    (server, seeded), (tab, problems) = served, page
    tab.set_viewport_size({"width": 420, "height": 900})
    for job_id, report in (
        (seeded.succeeded, True),
        (seeded.older_succeeded, True),
        (seeded.running, False),
    ):
        open_job(tab, server.url, job_id, report=report)
        width = tab.evaluate("document.documentElement.scrollWidth")
        assert width <= 420, f"job {job_id} is {width} px wide at a 420 px viewport"
        # Each phase is still named over the curves: in full, or by its letter when narrow.
        drawn = chart(tab, "chart-loss")["phasesDrawn"]
        assert drawn[0] in ("structure learning", "S") and drawn[1] in ("weight learning", "W")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=SCREENSHOTS / "job-phone.png", full_page=True)
    assert problems == [], problems
