"""The pages get their data from the REST API in the browser, so these tests check the other
half: every API path the scripts name is a real route, and on a seeded store the API answers
each call the pages make with what they render."""

from __future__ import annotations

import json
import re
from typing import Any

from service.dashboard.routes import STATIC_DIR
from tests.dashboard.conftest import Dashboard
from tests.dashboard.seed import ROLES

API_PATH = re.compile(r"""["`](/v1/[^"`]*)["`]""")
PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


def script_api_paths() -> dict[str, set[str]]:
    """API paths named by each script, placeholders as `x` and without query strings."""
    found: dict[str, set[str]] = {}
    for script in (STATIC_DIR / "js").glob("*.js"):
        for raw in API_PATH.findall(script.read_text()):
            path = PLACEHOLDER.sub("x", raw).split("?")[0]
            found.setdefault(path, set()).add(script.name)
    return found


def read_sse(
    dash: Dashboard, path: str, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    headers = {**dash.admin, "Accept": "text/event-stream", **(headers or {})}
    with dash.client.stream("GET", path, headers=headers) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    events = []
    for block in re.split(r"\r?\n\r?\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line.startswith(":") and ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.removeprefix(" ")
        if "data" in fields:
            events.append({**fields, "data": json.loads(fields["data"])})
    return events


def test_every_api_path_in_the_scripts_is_a_route(dash: Dashboard) -> None:
    paths = script_api_paths()
    expected = {
        "/v1/jobs", "/v1/jobs/x", "/v1/jobs/x/events", "/v1/jobs/x/cancel", "/v1/jobs/x/report",
        "/v1/jobs/x/artifacts", "/v1/jobs/x/artifacts/x", "/v1/models", "/v1/models/x",
        "/v1/datasets", "/v1/datasets/x", "/v1/deployments", "/v1/deployments/x",
        "/v1/deployments/x/rollback", "/v1/devices",
    }  # fmt: skip
    assert expected <= set(paths), sorted(expected - set(paths))
    # The published contract: the OpenAPI document (the dashboard's own pages are not in it).
    schema = dash.client.get("/openapi.json").json()
    routes = [re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", p) + "$") for p in schema["paths"]]
    for path, scripts in paths.items():
        assert any(r.match(path) for r in routes), f"{path} (used by {scripts})"


def test_jobs_list_newest_first_and_filtered(dash: Dashboard) -> None:
    s = dash.seeded
    page = dash.client.get("/v1/jobs?limit=100", headers=dash.admin).json()
    ids = [j["id"] for j in page["data"]]
    assert ids == [s.queued, s.running, s.succeeded, s.canceled, s.failed, s.older_succeeded]
    row = next(j for j in page["data"] if j["id"] == s.succeeded)
    # What a row shows: state, phase, progress, target, achieved, accuracy, age.
    assert row["state"] == "succeeded" and row["progress"] == 1.0
    assert row["config"]["target"] == {"metric": "flops", "reduction": 0.5}
    assert row["summary"]["achieved"]["flops"] > 0.5
    assert row["summary"]["accuracy_before"] == 0.91
    assert row["created_at"]
    for state, job_id in [("failed", s.failed), ("canceled", s.canceled), ("running", s.running)]:
        page = dash.client.get(f"/v1/jobs?limit=100&state={state}", headers=dash.admin).json()
        assert [j["id"] for j in page["data"]] == [job_id]
    models = dash.client.get("/v1/models?limit=500", headers=dash.admin).json()
    assert models["data"][0]["arch"] == "vgg11"
    # The row's context line (model on dataset → deployment) and its duration.
    datasets = dash.client.get("/v1/datasets?limit=500", headers=dash.admin).json()
    assert row["dataset_id"] in {d["id"] for d in datasets["data"]}
    assert row["started_at"] and row["finished_at"]


def test_failed_and_canceled_jobs_carry_what_the_page_shows(dash: Dashboard) -> None:
    failed = dash.client.get(f"/v1/jobs/{dash.seeded.failed}", headers=dash.admin).json()
    assert failed["state"] == "failed"
    assert failed["error_type"] == "DataError"
    assert failed["error_message"] == "digits.npz: missing array(s) y"
    canceled = dash.client.get(f"/v1/jobs/{dash.seeded.canceled}", headers=dash.admin).json()
    assert canceled["state"] == "canceled"
    # Neither has a report: the page keeps its placeholder instead of showing an error.
    for job_id in (dash.seeded.failed, dash.seeded.canceled):
        response = dash.client.get(f"/v1/jobs/{job_id}/report", headers=dash.admin)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


def test_event_stream_replays_epochs_and_allocations(dash: Dashboard) -> None:
    events = read_sse(dash, f"/v1/jobs/{dash.seeded.succeeded}/events")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "state" and kinds[-1] == "state"
    assert events[-1]["data"]["state"] == "succeeded"
    assert [e["id"] for e in events] == [str(i) for i in range(1, len(events) + 1)]
    epochs = [e["data"] for e in events if e["event"] == "epoch"]
    structure = [e for e in epochs if e["phase"] == "structure_learning"]
    assert len(structure) == 3 and len(epochs) == 5
    assert {"loss", "accuracy", "flops"} <= set(structure[0]["metrics"])
    assert structure[-1]["channels"] == {
        "features.0": 7, "features.4": 8, "features.8": 23, "features.11": 14,
    }  # fmt: skip
    # The page reconnects with Last-Event-ID and must get only what it missed.
    path = f"/v1/jobs/{dash.seeded.succeeded}/events"
    rest = read_sse(dash, path, {"Last-Event-ID": str(len(events) - 2)})
    assert [e["id"] for e in rest] == [str(len(events) - 1), str(len(events))]


def test_report_and_artifacts_of_a_succeeded_job(dash: Dashboard) -> None:
    job_id = dash.seeded.succeeded
    report = dash.client.get(f"/v1/jobs/{job_id}/report", headers=dash.admin).json()
    assert [u["name"] for u in report["units"]] == [
        "features.0",
        "features.4",
        "features.8",
        "features.11",
    ]
    assert all(u["channels_after"] <= u["channels_before"] for u in report["units"])
    assert [u["role"] for u in report["units"]] == ROLES  # the page's unit labels
    older = dash.client.get(f"/v1/jobs/{dash.seeded.older_succeeded}/report", headers=dash.admin)
    assert all("role" not in u for u in older.json()["units"])  # as reports were before roles
    assert [h["active"] for h in report["history"] if "active" in h]
    artifacts = dash.client.get(f"/v1/jobs/{job_id}/artifacts", headers=dash.admin).json()
    names = sorted(a["name"] for a in artifacts)
    assert names == ["baseline.onnx", "model.onnx", "report.json"]
    download = dash.client.get(f"/v1/jobs/{job_id}/artifacts/model.onnx", headers=dash.admin)
    assert download.status_code == 200 and download.content == b"onnx" * 300


def test_model_and_dataset_of_the_job_page(dash: Dashboard) -> None:
    model = dash.client.get(f"/v1/models/{dash.seeded.model_id}", headers=dash.admin).json()
    assert model["flops"] == 2_430_000  # the FLOPs chart's baseline before the report exists
    dataset = dash.client.get(f"/v1/datasets/{dash.seeded.dataset_id}", headers=dash.admin).json()
    assert dataset["samples"] == 1797


def test_promote_and_cancel_answer_the_page(dash: Dashboard) -> None:
    s = dash.seeded
    refused = dash.client.put(
        "/v1/deployments/warehouse", json={"job_id": s.failed}, headers=dash.admin
    )
    assert refused.status_code == 409
    assert "failed" in refused.json()["detail"]
    promoted = dash.client.put(
        "/v1/deployments/lab", json={"job_id": s.succeeded}, headers=dash.admin
    )
    assert promoted.status_code == 201
    assert promoted.json()["current_version"] == 1
    cancel = dash.client.post(f"/v1/jobs/{s.running}/cancel", headers=dash.admin)
    assert cancel.status_code == 202 and cancel.json()["cancel_requested"] is True
    assert (
        dash.client.post(f"/v1/jobs/{s.queued}/cancel", headers=dash.admin).json()["state"]
        == "canceled"
    )


def test_deployments_history_rollback_and_devices(dash: Dashboard) -> None:
    s = dash.seeded
    page = dash.client.get("/v1/deployments?limit=500", headers=dash.admin).json()
    warehouse = next(d for d in page["data"] if d["name"] == "warehouse")
    assert warehouse["current_version"] == 2 and warehouse["current_job_id"] == s.succeeded
    assert [v["version"] for v in warehouse["history"]] == [2, 1]
    rolled = dash.client.post(
        "/v1/deployments/warehouse/rollback", json={"version": 1}, headers=dash.admin
    )
    assert rolled.status_code == 200 and rolled.json()["current_version"] == 1
    devices = dash.client.get("/v1/devices?limit=1000", headers=dash.admin).json()
    device = devices["data"][0]
    assert device["id"] == s.device_id and device["current_version"] == 2
    assert device["last_report"]["latency"]["p95_ms"] == 2.4
    assert device["last_report"]["speedup"] == 1.9
    assert device["last_seen_at"]


def test_job_submission_errors_name_the_fields_the_form_maps(dash: Dashboard) -> None:
    s = dash.seeded
    body = {
        "model_id": s.model_id, "dataset_id": "dst_missing",
        "target": {"metric": "flops", "reduction": 1.5}, "structure_epochs": -1,
    }  # fmt: skip
    response = dash.client.post("/v1/jobs", json=body, headers=dash.admin)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    locs = {".".join(map(str, e["loc"])) for e in response.json()["errors"]}
    # submit.js maps these locations to #target-reduction and #structure-epochs.
    assert {"body.target.reduction", "body.structure_epochs"} <= locs
    upload = dash.client.post(
        "/v1/models",
        files={"file": ("ck.pt", b"PK\x03\x04", "application/octet-stream")},
        data={"arch": "vgg11", "num_classes": "1", "input_shape": "1,32"},
        headers=dash.admin,
    )
    assert upload.status_code == 422
    locs = {".".join(map(str, e["loc"])) for e in upload.json()["errors"]}
    assert {"body.num_classes", "body.input_shape"} <= locs


def test_without_a_token_the_api_answers_401_and_the_page_goes_to_login(dash: Dashboard) -> None:
    response = dash.client.get("/v1/jobs?limit=1")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    wrong = dash.client.get("/v1/jobs?limit=1", headers={"Authorization": "Bearer ep_nope"})
    assert wrong.status_code == 401
