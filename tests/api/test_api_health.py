"""Probes, metrics and the problem+json shape of framework-level errors."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from infra.settings import Settings
from infra.store.db import make_engine
from service.api.main import create_app
from tests.api.api_helpers import Api, make_settings, submit_job
from tests.support.net import free_port

PROBLEM = "application/problem+json"


def test_healthz_needs_no_token(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_broker_and_storage(api: Api) -> None:
    response = api.client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}


def test_readyz_is_a_503_problem_when_storage_is_gone(api: Api) -> None:
    # The artifact root disappears (unmounted volume): storage listing fails.
    root = api.settings.artifacts_url
    assert root is not None
    shutil.rmtree(root)
    response = api.client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["checks"]["storage"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert "storage" in body["detail"]


def test_metrics_counts_requests_by_route_template_and_jobs_by_state(api: Api) -> None:
    job = submit_job(api)
    api.client.get(f"/v1/jobs/{job['id']}", headers=api.admin)
    response = api.client.get("/metrics", headers=api.admin)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'edgeprune_jobs{state="queued"} 1.0' in text
    assert 'edgeprune_jobs{state="running"} 0.0' in text
    # The template, not the raw path: one series for every job id.
    assert 'route="/v1/jobs/{job_id}"' in text
    assert job["id"] not in text
    assert "edgeprune_http_request_duration_seconds_bucket" in text
    assert "edgeprune_manifest_not_modified_ratio" in text


def test_metrics_needs_a_token(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401


def test_unknown_route_is_a_404_problem(api: Api) -> None:
    response = api.client.get("/v1/nothing-here", headers=api.admin)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == 404 and body["title"] == "Not Found"


def test_wrong_method_is_a_405_problem_with_allow(api: Api) -> None:
    response = api.client.delete("/v1/jobs", headers=api.admin)
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM
    assert "POST" in response.headers["allow"]


def test_unexpected_errors_never_leak_a_traceback(api: Api) -> None:
    app = api.client.app
    assert isinstance(app, FastAPI)
    router = APIRouter()

    @router.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    app.include_router(router)
    response = api.client.get("/v1/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM
    assert "secret" not in response.text and "Traceback" not in response.text
    assert response.json()["type"] == "urn:edgeprune:problem:internal-error"


def test_openapi_docs_are_served(api: Api) -> None:
    assert api.client.get("/docs").status_code == 200
    spec = api.client.get("/openapi.json").json()
    assert "/v1/jobs/{job_id}/events" in spec["paths"]
    assert "/v1/deployments/{name}/manifest" in spec["paths"]


def test_database_outage_is_a_503_problem_with_retry_after(api: Api) -> None:
    app = api.client.app
    assert isinstance(app, FastAPI)
    engine = app.state.sessions.kw["bind"]
    engine.dispose()
    database_url = str(api.settings.database_url)
    if database_url.startswith("sqlite"):
        # The database file's directory disappears under a running app (a lost volume);
        # the pooled engine then fails to reach it.
        db_path = database_url.removeprefix("sqlite:///")
        os.replace(db_path, db_path + ".moved")
        os.mkdir(db_path)  # a directory where the database file was: sqlite cannot open it
        try:
            response = api.client.get("/v1/jobs", headers=api.admin)
        finally:
            os.rmdir(db_path)
            os.replace(db_path + ".moved", db_path)
    else:
        # The PostgreSQL server goes away: connections to it are refused.
        app.state.sessions.kw["bind"] = make_engine(
            make_url(database_url).set(host="127.0.0.1", port=free_port()).render_as_string(False)
        )
        try:
            response = api.client.get("/v1/jobs", headers=api.admin)
        finally:
            app.state.sessions.kw["bind"].dispose()
            app.state.sessions.kw["bind"] = engine
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["type"] == "urn:edgeprune:problem:service-unavailable"


def test_the_startup_heap_is_frozen_while_the_api_serves(tmp_path: Path) -> None:
    # On by default; the other tests turn it off to start hundreds of apps quickly.
    settings = make_settings(tmp_path, api_freeze_heap=True)
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() > 0  # the collector no longer walks the startup heap
    assert gc.get_freeze_count() == 0  # unfrozen at shutdown
    assert Settings().api_freeze_heap
