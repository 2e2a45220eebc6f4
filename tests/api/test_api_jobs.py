"""POST/GET /v1/jobs, cancel, report and artifacts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api.api_helpers import (
    Api,
    finish_job,
    job_body,
    job_state,
    read_sse,
    running_api,
    seed_dataset,
    seed_model,
    submit_job,
)

PROBLEM = "application/problem+json"


def test_create_job_queues_it_with_a_first_event_and_location(api: Api) -> None:
    body = job_body(seed_model(api), seed_dataset(api), deployment="cams")
    response = api.client.post("/v1/jobs", json=body, headers=api.admin)
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["state"] == "queued" and job["progress"] == 0.0 and job["phase"] is None
    assert job["deployment"] == "cams"
    # Defaults are filled in and recorded with the job.
    assert job["config"] == {
        "target": {"metric": "flops", "reduction": 0.5},
        "structure_epochs": 1,
        "finetune_epochs": 1,
        "batch_size": 64,
        "lr": 0.01,
        "seed": 0,
        "channel_multiple": 1,
        "distill": 0.0,
        "distill_phases": "both",
        "target_fit": "scale",
        "augment": None,  # by the kind of data
        "quantize": "none",
        "precision": "auto",
        "int8_max_drop": 0.01,
        "rollout_percent": 100,
    }
    with api.sessions() as session:
        from infra.store.job_events import events_after

        events = events_after(session, job["id"])
    assert [(e.seq, e.kind, e.data) for e in events] == [(1, "state", {"state": "queued"})]
    assert job["notes"] == []


def test_create_job_sends_the_task_to_the_broker(api: Api) -> None:
    job = submit_job(api)
    queue = api.client.app.state.queue  # type: ignore[attr-defined]
    assert queue.snapshot().has(job["id"])
    with api.sessions() as session:
        from infra.store.models import Job

        row = session.get(Job, job["id"])
        assert row is not None and row.enqueued_at is not None


def test_structure_epochs_zero_is_accepted(api: Api) -> None:
    job = submit_job(api, structure_epochs=0)
    assert job["config"]["structure_epochs"] == 0


BAD_BODIES: list[tuple[dict[str, Any], list[Any]]] = [
    ({"target": {"metric": "flops", "reduction": 0}}, ["body", "target", "reduction"]),
    ({"target": {"metric": "flops", "reduction": 1}}, ["body", "target", "reduction"]),
    ({"target": {"metric": "flops", "reduction": 1.0}}, ["body", "target", "reduction"]),
    ({"target": {"metric": "flops", "reduction": -0.1}}, ["body", "target", "reduction"]),
    ({"target": {"metric": "flops", "reduction": 1.5}}, ["body", "target", "reduction"]),
    ({"target": {"metric": "flops", "reduction": "NaN"}}, ["body", "target", "reduction"]),
    ({"target": {"metric": "flops", "reduction": "0.5"}}, ["body", "target", "reduction"]),
    ({"target": {"metric": "latency", "reduction": 0.5}}, ["body", "target", "metric"]),
    ({"target": {"metric": "flops"}}, ["body", "target", "reduction"]),
    ({"quantize": "int4"}, ["body", "quantize"]),
    ({"int8_max_drop": 2}, ["body", "int8_max_drop"]),
    ({"distill": 1.5}, ["body", "distill"]),
    ({"distill_phases": "structure"}, ["body", "distill_phases"]),
    ({"target_fit": "greedy"}, ["body", "target_fit"]),  # an engine option for benchmarks only
    ({"target": "flops=0.5"}, ["body", "target"]),
    ({"finetune_epochs": 0}, ["body", "finetune_epochs"]),
    ({"finetune_epochs": -1}, ["body", "finetune_epochs"]),
    ({"structure_epochs": -1}, ["body", "structure_epochs"]),
    ({"structure_epochs": 1001}, ["body", "structure_epochs"]),
    ({"structure_epochs": 1.5}, ["body", "structure_epochs"]),
    ({"batch_size": 0}, ["body", "batch_size"]),
    ({"lr": 0}, ["body", "lr"]),
    ({"seed": -1}, ["body", "seed"]),
    ({"deployment": "Bad Name!"}, ["body", "deployment"]),
    ({"finetune_epoch": 3}, ["body", "finetune_epoch"]),  # misspelt: not silently ignored
]


@pytest.mark.parametrize(("overrides", "loc"), BAD_BODIES)
def test_bad_job_bodies_are_422_naming_the_field(
    api: Api, overrides: dict[str, Any], loc: list[Any]
) -> None:
    body = job_body("mdl_x", "dst_x", **overrides)
    response = api.client.post("/v1/jobs", json=body, headers=api.admin)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:edgeprune:problem:validation-error"
    assert loc in [e["loc"] for e in problem["errors"]]
    assert ".".join(str(p) for p in loc) in problem["detail"]


def test_nan_literal_in_json_is_refused(api: Api) -> None:
    raw = json.dumps(job_body("mdl_x", "dst_x")).replace('"reduction": 0.5', '"reduction": NaN')
    response = api.client.post(
        "/v1/jobs", content=raw, headers={**api.admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert ["body", "target", "reduction"] in [e["loc"] for e in response.json()["errors"]]


def test_malformed_json_is_a_422_problem(api: Api) -> None:
    response = api.client.post(
        "/v1/jobs",
        content=b'{"model_id": ',
        headers={**api.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["errors"][0]["type"] == "json_invalid"


def test_wrong_content_type_is_415(api: Api) -> None:
    response = api.client.post(
        "/v1/jobs",
        content=json.dumps(job_body("a", "b")),
        headers={**api.admin, "Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM


def test_oversized_json_body_is_413(api: Api) -> None:
    padding = "x" * (api.settings.max_request_bytes + 10)
    response = api.client.post(
        "/v1/jobs", json=job_body("a", "b", padding=padding), headers=api.admin
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM


def test_unknown_model_and_dataset_are_422_naming_them(api: Api) -> None:
    dataset = seed_dataset(api)
    response = api.client.post("/v1/jobs", json=job_body("mdl_nope", dataset), headers=api.admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "model_id"]
    assert "mdl_nope" in response.json()["detail"]

    model = seed_model(api)
    response = api.client.post("/v1/jobs", json=job_body(model, "dst_nope"), headers=api.admin)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "dataset_id"]


def test_invalid_model_is_422_with_its_reason(api: Api) -> None:
    model = seed_model(api, status="invalid", error="missing key features.0.weight")
    response = api.client.post(
        "/v1/jobs", json=job_body(model, seed_dataset(api)), headers=api.admin
    )
    assert response.status_code == 422
    assert "missing key features.0.weight" in response.json()["detail"]


def test_pending_model_is_409(api: Api) -> None:
    model = seed_model(api, status="pending")
    response = api.client.post(
        "/v1/jobs", json=job_body(model, seed_dataset(api)), headers=api.admin
    )
    assert response.status_code == 409


def test_list_jobs_newest_first_with_state_filter_and_paging(api: Api) -> None:
    first, second, third = (submit_job(api) for _ in range(3))
    finish_job(api, second["id"])
    response = api.client.get("/v1/jobs", headers=api.admin)
    assert response.status_code == 200
    listing = response.json()
    assert listing["count"] == 3
    assert [j["id"] for j in listing["data"]] == [third["id"], second["id"], first["id"]]

    queued = api.client.get("/v1/jobs", params={"state": "queued"}, headers=api.admin).json()
    assert {j["id"] for j in queued["data"]} == {first["id"], third["id"]}
    assert queued["count"] == 2

    paged = api.client.get("/v1/jobs", params={"limit": 1, "offset": 1}, headers=api.admin)
    assert [j["id"] for j in paged.json()["data"]] == [second["id"]]
    assert paged.json()["count"] == 3

    bad = api.client.get("/v1/jobs", params={"state": "sleeping"}, headers=api.admin)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["loc"] == ["query", "state"]


def test_get_job_shows_summary_after_success(api: Api) -> None:
    job = submit_job(api)
    finish_job(api, job["id"])
    body = api.client.get(f"/v1/jobs/{job['id']}", headers=api.admin).json()
    assert body["state"] == "succeeded" and body["progress"] == 1.0
    assert body["summary"] == {"flops_after": 2500, "params_after": 600}
    assert body["started_at"] is not None and body["finished_at"] is not None


def test_unknown_job_is_404_everywhere(api: Api) -> None:
    for path in (
        "/v1/jobs/job_nope",
        "/v1/jobs/job_nope/events",
        "/v1/jobs/job_nope/report",
        "/v1/jobs/job_nope/artifacts",
        "/v1/jobs/job_nope/artifacts/model.onnx",
    ):
        response = api.client.get(path, headers=api.admin)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["type"] == "urn:edgeprune:problem:job-not-found"
    assert api.client.post("/v1/jobs/job_nope/cancel", headers=api.admin).status_code == 404


def test_cancel_a_queued_job_cancels_it_at_once(api: Api) -> None:
    job = submit_job(api)
    response = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=api.admin)
    assert response.status_code == 200
    assert response.json()["state"] == "canceled"
    assert job_state(api, job["id"]) == "canceled"
    # Idempotent.
    again = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=api.admin)
    assert again.status_code == 200 and again.json()["state"] == "canceled"


def test_cancel_a_running_job_is_cooperative(api: Api) -> None:
    from infra.store import jobs as job_store

    job = submit_job(api)
    with api.sessions() as session:
        job_store.mark_running(session, job["id"], "w1")
        session.commit()
    response = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=api.admin)
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "running" and body["cancel_requested"] is True


def test_cancel_a_succeeded_job_is_409(api: Api) -> None:
    job = submit_job(api)
    finish_job(api, job["id"])
    response = api.client.post(f"/v1/jobs/{job['id']}/cancel", headers=api.admin)
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM


def test_report_and_artifacts_before_success_are_409(api: Api) -> None:
    job = submit_job(api)
    report = api.client.get(f"/v1/jobs/{job['id']}/report", headers=api.admin)
    assert report.status_code == 409
    assert report.json()["type"] == "urn:edgeprune:problem:artifact-not-ready"
    onnx = api.client.get(f"/v1/jobs/{job['id']}/artifacts/model.onnx", headers=api.admin)
    assert onnx.status_code == 409


def test_report_and_artifacts_after_success(api: Api) -> None:
    job = submit_job(api)
    digests = finish_job(api, job["id"], onnx=b"the-onnx" * 64)
    report = api.client.get(f"/v1/jobs/{job['id']}/report", headers=api.admin)
    assert report.status_code == 200
    assert report.headers["content-type"] == "application/json"
    assert report.json() == {"achieved": {"flops": 0.5}}

    listing = api.client.get(f"/v1/jobs/{job['id']}/artifacts", headers=api.admin).json()
    assert {a["name"] for a in listing} == {"model.onnx", "baseline.onnx", "report.json"}

    onnx = api.client.get(f"/v1/jobs/{job['id']}/artifacts/model.onnx", headers=api.admin)
    assert onnx.status_code == 200
    assert onnx.content == b"the-onnx" * 64
    assert onnx.headers["content-type"] == "application/octet-stream"
    assert onnx.headers["etag"] == f'"{digests["model.onnx"]}"'
    assert 'filename="model.onnx"' in onnx.headers["content-disposition"]

    missing = api.client.get(f"/v1/jobs/{job['id']}/artifacts/plot.png", headers=api.admin)
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:edgeprune:problem:artifact-not-found"


def test_oversized_chunked_json_body_is_413(api: Api) -> None:
    def chunks() -> Any:
        yield b'{"model_id": "'
        for _ in range(api.settings.max_request_bytes // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    response = api.client.post(
        "/v1/jobs", content=chunks(), headers={**api.admin, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["type"] == "urn:edgeprune:problem:payload-too-large"


def test_all_jobs_feed_notifies_of_every_job_and_resumes(api: Api) -> None:
    """GET /v1/jobs/events: one `job` notification per event of any job, ids increasing."""
    first = submit_job(api)
    second = submit_job(api)
    events = read_sse(api, "/v1/jobs/events?after=0&follow=false")
    assert [(e["event"], e["data"]["job_id"], e["data"]["state"]) for e in events] == [
        ("job", first["id"], "queued"),
        ("job", second["id"], "queued"),
    ]
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(set(ids))
    # A reconnecting client (Last-Event-ID) gets only what came after.
    later = read_sse(api, "/v1/jobs/events?follow=false", headers={"Last-Event-ID": str(ids[0])})
    assert [e["data"]["job_id"] for e in later] == [second["id"]]
    # Without a cursor the feed starts at the newest event: nothing to replay.
    assert read_sse(api, "/v1/jobs/events?follow=false") == []


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_a_dataset_is_refused_for_its_channels_and_resized_with_a_note(
    tmp_path: Path, database: str
) -> None:
    with running_api(tmp_path, database, "edgeprune_api_jobs_shapes") as api:
        model = seed_model(api, input_shape=(1, 32, 32))
        rgb = seed_dataset(api, input_shape=(3, 32, 32))
        refused = api.client.post("/v1/jobs", json=job_body(model, rgb), headers=api.admin)
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == PROBLEM
        problem = refused.json()
        assert problem["detail"] == (
            f"dataset {rgb} has 3-channel inputs but model {model} (vgg11) takes 1-channel "
            "inputs: use a dataset with 1 channel(s), or a checkpoint built for 3"
        )
        assert problem["errors"][0]["loc"] == ["body", "dataset_id"]
        assert api.client.get("/v1/jobs", headers=api.admin).json()["count"] == 0

        small = seed_dataset(api, input_shape=(1, 8, 8))
        accepted = api.client.post("/v1/jobs", json=job_body(model, small), headers=api.admin)
        assert accepted.status_code == 202, accepted.text
        job = accepted.json()
        note = (
            f"the dataset's inputs are 8x8 and model {model} (vgg11) takes 32x32: the worker "
            "resizes them to 32x32 (bilinear) before training"
        )
        assert job["notes"] == [note]
        # Kept as the job's log event, after its first state event; GET has no notes.
        from infra.store.job_events import events_after

        with api.sessions() as session:
            events = [(e.kind, e.data) for e in events_after(session, job["id"])]
        assert events == [("state", {"state": "queued"}), ("log", {"message": note})]
        shown = api.client.get(f"/v1/jobs/{job['id']}", headers=api.admin).json()
        assert "notes" not in shown
