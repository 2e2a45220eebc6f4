"""With the broker unreachable: jobs are still accepted (the database is the source of
truth), uploads that need a worker are refused with 503, and /readyz says which part is
down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infra.store.models import Job
from service.api.main import create_app
from tests.api.api_helpers import Api, job_body, make_settings, seed_dataset, seed_model


@pytest.fixture
def api_without_broker(tmp_path: Path) -> Iterator[Api]:
    # Nothing listens on port 1: every connection is refused at once.
    settings = make_settings(tmp_path, broker_url="redis://127.0.0.1:1/0")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token()
        yield api


def test_readyz_names_the_broker(api_without_broker: Api) -> None:
    response = api_without_broker.client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ok", "broker": "unavailable", "storage": "ok"}
    assert "127.0.0.1:1" not in response.text  # connection details stay in the server log


def test_job_is_accepted_and_left_for_the_reconciler(api_without_broker: Api) -> None:
    api = api_without_broker
    body = job_body(seed_model(api), seed_dataset(api))
    response = api.client.post("/v1/jobs", json=body, headers=api.admin)
    assert response.status_code == 202, response.text
    with api.sessions() as session:
        job = session.get(Job, response.json()["id"])
        assert job is not None and job.state == "queued"
        # Never sent: the reconciler's clock starts at created_at.
        assert job.enqueued_at is None


def test_model_upload_is_503_and_leaves_no_row(api_without_broker: Api) -> None:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("m/data.pkl", b".")
    api = api_without_broker
    response = api.client.post(
        "/v1/models",
        files={"file": ("m.pt", buffer.getvalue())},
        data={"arch": "vgg11", "num_classes": "10", "input_shape": "1,32,32"},
        headers=api.admin,
    )
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert api.client.get("/v1/models", headers=api.admin).json()["count"] == 0
