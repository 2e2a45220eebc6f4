"""The dashboard's HTML shells: public, data-free, accessible, wired to their scripts."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import Dashboard
from tests.dashboard.html import Page, parse

PAGES = {
    "/": ("jobs", "Jobs", "/static/js/jobs.js"),
    "/login": (None, "Sign in to EdgePrune", "/static/js/login.js"),
    "/jobs/new": ("submit", "New compression job", "/static/js/submit.js"),
    "/deployments": ("deployments", "Deployments", "/static/js/deployments.js"),
}
NAV = {"jobs": "/", "submit": "/jobs/new", "deployments": "/deployments"}


def get_page(dash: Dashboard, path: str) -> Page:
    # No Authorization header: the shells are public; the data behind them is not.
    response = dash.client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["referrer-policy"] == "no-referrer"
    return parse(response.text)


def module_scripts(page: Page) -> list[str]:
    return [s.attrs["src"].split("?")[0] for s in page.all("script", type="module")]


def assert_labelled(page: Page) -> None:
    """Every form control has a <label for> (or sits inside a label, as radios do)."""
    labelled = {label.attrs.get("for") for label in page.all("label")}
    for tag in ("input", "select"):
        for control in page.all(tag):
            if control.attrs.get("type") == "radio":
                continue
            assert control.attrs.get("id") in labelled, f"{tag}#{control.attrs.get('id')}"


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_its_shell(dash: Dashboard, path: str) -> None:
    nav, heading, script = PAGES[path]
    page = get_page(dash, path)
    assert page.all("html")[0].attrs["lang"] == "en"
    h1 = page.all("h1")
    assert len(h1) == 1 and h1[0].text.strip().startswith(heading)
    assert module_scripts(page) == [script]
    assert (
        page.all("link", rel="stylesheet")[0].attrs["href"].startswith("/static/css/dashboard.css")
    )
    assert page.by_id("main").tag == "main"
    assert_labelled(page)
    current = [a.attrs["href"] for a in page.all("a") if a.attrs.get("aria-current") == "page"]
    assert current == ([NAV[nav]] if nav else [])
    if nav:
        assert page.by_id("logout").tag == "button"


@pytest.mark.parametrize("path", [*PAGES, "/jobs/{succeeded}"])
def test_shells_carry_no_data(dash: Dashboard, path: str) -> None:
    """Everything on the pages comes from the authenticated API, not from the server-side
    template: no job, model, deployment or device of the store appears in any shell."""
    s = dash.seeded
    html = dash.client.get(path.format(succeeded=s.succeeded)).text
    others = [s.queued, s.running, s.failed, s.canceled, s.model_id, s.dataset_id, s.device_id]
    for secret in [*others, "warehouse", "digits-vgg", "DataError"]:
        assert secret not in html


def test_jobs_page_has_filter_and_table(dash: Dashboard) -> None:
    page = get_page(dash, "/")
    options = [o.attrs["value"] for o in page.all("option")]
    assert options == ["", "queued", "running", "succeeded", "failed", "canceled"]
    headers = [th.text.strip() for th in page.all("th", scope="col")]
    assert headers == [
        "Job",
        "State",
        "Phase",
        "Progress",
        "Target",
        "Achieved",
        "Accuracy",
        "Time",
    ]
    assert page.by_id("jobs-body").attrs["aria-live"] == "polite"


def test_job_page_has_every_panel(dash: Dashboard) -> None:
    job_id = dash.seeded.failed
    page = get_page(dash, f"/jobs/{job_id}")
    assert page.by_id("job-root").attrs["data-job-id"] == job_id
    assert module_scripts(page) == ["/static/js/job.js"]
    vendor = [s.attrs["src"] for s in page.all("script") if "type" not in s.attrs]
    assert vendor == ["/static/vendor/chart.umd.js?v=4.6.1"]
    for canvas in (
        "chart-loss",
        "chart-accuracy",
        "chart-flops",
        "chart-channels",
        "chart-allocation",
    ):
        element = page.by_id(canvas)
        assert element.tag == "canvas" and element.attrs["role"] == "img"
        assert element.attrs["aria-label"]
    headings = [h.text.strip() for h in page.all("h2")]
    for title in ("Progress", "Training curves", "Learned structure", "Report", "Artifacts",
                  "Promote to deployment", "Activity"):  # fmt: skip
        assert title in headings
    assert page.by_id("job-failure").attrs.get("hidden") == ""  # shown by the script
    assert page.by_id("cancel-job").tag == "button"
    assert page.by_id("job-progress").attrs["role"] == "progressbar"
    phases = [li.attrs["data-phase"] for li in page.all("li") if "data-phase" in li.attrs]
    assert phases == [
        "calibrating",
        "structure_learning",
        "pruning",
        "weight_learning",
        "exporting",
    ]
    form = page.by_id("promote-form")
    assert form.tag == "form"
    assert page.by_id("deployment-name-error").attrs["role"] == "alert"


def test_job_page_refuses_odd_ids(dash: Dashboard) -> None:
    response = dash.client.get("/jobs/<script>")
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"  # never HTML


def test_the_upload_leaves_arch_classes_and_shape_to_the_checkpoint(dash: Dashboard) -> None:
    page = get_page(dash, "/jobs/new")
    for name in ("model-arch", "model-num-classes", "model-input-shape"):
        control = page.by_id(name)
        # No preset a newcomer would send unread, and nothing makes the browser insist.
        assert "value" not in control.attrs and "required" not in control.attrs, name
        assert control.attrs["placeholder"] == "from the checkpoint"


def test_submit_form_has_a_field_and_an_error_slot_for_every_input(dash: Dashboard) -> None:
    page = get_page(dash, "/jobs/new")
    fields = [
        "model-file", "model-arch", "model-num-classes", "model-input-shape", "model-name",
        "model-id", "data-file", "data-name", "dataset-id", "target-metric", "target-reduction",
        "target-fit", "structure-epochs", "finetune-epochs", "batch-size", "lr", "seed",
        "auto-deployment", "quantize", "channel-multiple", "distill", "distill-phases",
    ]  # fmt: skip
    for name in fields:
        control = page.by_id(name)
        assert control.tag in ("input", "select")
        error = page.by_id(f"{name}-error")
        assert f"{name}-error" in control.attrs["aria-describedby"].split()
        assert error.attrs.get("hidden") == ""
    metrics = [o.attrs["value"] for o in page.all("option") if o.attrs.get("value")]
    assert {"flops", "params", "channels"} <= set(metrics)
    assert page.by_id("model-file").attrs["type"] == "file"
    assert page.by_id("submit-form").attrs.get("novalidate") == ""  # the API validates
    assert [legend.text.strip() for legend in page.all("legend")] == [
        "Model", "Edge data", "Target and training", "Edge model",
    ]  # fmt: skip


def test_login_page_takes_a_password_field(dash: Dashboard) -> None:
    page = get_page(dash, "/login")
    token = page.by_id("token")
    assert token.attrs["type"] == "password"
    assert page.all("label", for_="token")
    assert not page.all("nav")  # no navigation before signing in


def test_deployments_page_has_the_device_table(dash: Dashboard) -> None:
    page = get_page(dash, "/deployments")
    headers = [th.text.strip() for th in page.all("th", scope="col")]
    assert headers == [
        "Device", "Deployment", "Last seen", "Version", "Latency p50", "Latency p95",
        "Speedup vs baseline", "Throughput", "Status",
    ]  # fmt: skip
    assert page.by_id("deployments").attrs["aria-live"] == "polite"


def test_pages_do_not_replace_the_api(dash: Dashboard) -> None:
    """Mounting the dashboard leaves the API's own answers alone."""
    assert dash.client.get("/v1/jobs").status_code == 401
    assert dash.client.get("/healthz").json() == {"status": "ok"}
    missing = dash.client.get("/no-such-page")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
