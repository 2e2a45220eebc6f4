"""The API's queries on PostgreSQL (the scaled setup), not only SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api.main import create_app
from tests.api.api_helpers import Api, finish_job, make_settings, read_sse, submit_job
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_api(tmp_path: Path) -> Iterator[Api]:
    url = create_pg_database("edgeprune_api_test")
    try:
        settings = make_settings(tmp_path, database_url=url)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            api = Api(client=client, admin={}, settings=settings)
            api.admin = api.token()
            yield api
    finally:
        drop_pg_database(url)


def test_job_lifecycle_events_and_manifest_on_postgres(pg_api: Api) -> None:
    api = pg_api
    first, second = submit_job(api), submit_job(api)
    digests = finish_job(api, first["id"])
    listing = api.client.get("/v1/jobs", params={"state": "queued"}, headers=api.admin).json()
    assert [j["id"] for j in listing["data"]] == [second["id"]]

    events = read_sse(api, f"/v1/jobs/{first['id']}/events", {"Last-Event-ID": "1"})
    assert [e["id"] for e in events] == ["2", "3", "4"]

    promoted = api.client.put(
        "/v1/deployments/cams", json={"job_id": first["id"]}, headers=api.admin
    )
    assert promoted.status_code == 201, promoted.text
    manifest = api.client.get("/v1/deployments/cams/manifest", headers=api.admin)
    assert manifest.json()["sha256"] == digests["model.onnx"]
    again = api.client.get(
        "/v1/deployments/cams/manifest",
        headers={**api.admin, "If-None-Match": manifest.headers["etag"]},
    )
    assert again.status_code == 304

    device = api.client.post(
        "/v1/devices", json={"name": "cam", "deployment": "cams"}, headers=api.admin
    ).json()
    device_auth = {"Authorization": f"Bearer {device['token']}"}
    blob = api.client.get(f"/v1/artifacts/{digests['model.onnx']}", headers=device_auth)
    assert blob.status_code == 200
    metrics = api.client.get("/metrics", headers=api.admin).text
    assert 'edgeprune_jobs{state="succeeded"} 1.0' in metrics
