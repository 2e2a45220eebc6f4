"""Bearer tokens: admin everywhere, device tokens only for their own deployment."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infra.store.models import Deployment, Device
from infra.store.tokens import revoke_token
from service.api.main import create_app
from tests.api.api_helpers import Api, finish_job, make_settings, promote, submit_job

ADMIN_ROUTES = [
    ("GET", "/v1/models"),
    ("GET", "/v1/models/mdl_x"),
    ("POST", "/v1/models"),
    ("GET", "/v1/datasets"),
    ("POST", "/v1/datasets"),
    ("GET", "/v1/jobs"),
    ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs/job_x"),
    ("GET", "/v1/jobs/job_x/events"),
    ("POST", "/v1/jobs/job_x/cancel"),
    ("GET", "/v1/jobs/job_x/report"),
    ("GET", "/v1/jobs/job_x/artifacts/model.onnx"),
    ("GET", "/v1/deployments"),
    ("PUT", "/v1/deployments/cams"),
    ("GET", "/v1/deployments/cams"),
    ("POST", "/v1/deployments/cams/rollback"),
    ("POST", "/v1/deployments/cams/widen"),
    ("GET", "/v1/deployments/cams/fleet"),
    ("GET", "/v1/deployments/cams/devices"),
    ("GET", "/v1/devices"),
    ("GET", "/v1/devices/dev_x"),
    ("GET", "/v1/devices/dev_x/reports"),
    ("POST", "/v1/devices/dev_x/revoke"),
    ("DELETE", "/v1/devices/dev_x"),
    ("POST", "/v1/devices"),
    ("GET", "/metrics"),
]
ANY_TOKEN_ROUTES = [
    ("GET", "/v1/deployments/cams/manifest"),
    ("GET", f"/v1/artifacts/{'a' * 64}"),
    ("POST", "/v1/devices/dev_x/reports"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES + ANY_TOKEN_ROUTES)
def test_no_token_is_401_problem(api: Api, method: str, path: str) -> None:
    response = api.client.request(method, path)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == 'Bearer realm="edgeprune"'


@pytest.mark.parametrize(
    "authorization", ["Bearer ep_wrong", "Bearer ", "Basic dXNlcjpwYXNz", "ep_no_scheme"]
)
def test_bad_token_is_401(api: Api, authorization: str) -> None:
    response = api.client.get("/v1/jobs", headers={"Authorization": authorization})
    assert response.status_code == 401


def test_revoked_token_is_401(api: Api) -> None:
    headers = api.token()
    assert api.client.get("/v1/jobs", headers=headers).status_code == 200
    with api.sessions() as session:
        from sqlalchemy import select

        from infra.store.models import Token
        from infra.store.tokens import hash_secret

        secret = headers["Authorization"].removeprefix("Bearer ")
        token_id = session.scalar(select(Token.id).where(Token.token_hash == hash_secret(secret)))
        assert token_id is not None and revoke_token(session, token_id)
        session.commit()
    assert api.client.get("/v1/jobs", headers=headers).status_code == 401


def _device(api: Api, deployment: str) -> tuple[str, dict[str, str]]:
    """A device of `deployment`, which gets a first version if it has none (devices only
    register for deployments that exist)."""
    with api.sessions() as session:
        known = session.get(Deployment, deployment) is not None
    if not known:
        job = submit_job(api)
        finish_job(api, job["id"])
        promote(api, deployment, job["id"])
    response = api.client.post(
        "/v1/devices",
        json={"name": f"cam-{deployment}", "deployment": deployment},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_device_token_is_403_on_admin_routes(api: Api, method: str, path: str) -> None:
    _, device = _device(api, "cams")
    response = api.client.request(method, path, headers=device)
    assert response.status_code == 403, response.text
    assert response.json()["type"] == "urn:edgeprune:problem:forbidden"


def test_device_reads_only_its_own_deployment(api: Api) -> None:
    own = submit_job(api)
    own_digests = finish_job(api, own["id"], onnx=b"own" * 30)
    other = submit_job(api)
    other_digests = finish_job(api, other["id"], onnx=b"other" * 30)
    promote(api, "cams", own["id"])
    promote(api, "doors", other["id"])
    _, device = _device(api, "cams")

    manifest = api.client.get("/v1/deployments/cams/manifest", headers=device)
    assert manifest.status_code == 200
    assert api.client.get(manifest.json()["url"], headers=device).content == b"own" * 30
    assert api.client.get(manifest.json()["baseline_url"], headers=device).status_code == 200

    assert api.client.get("/v1/deployments/doors/manifest", headers=device).status_code == 403
    foreign = api.client.get(f"/v1/artifacts/{other_digests['model.onnx']}", headers=device)
    assert foreign.status_code == 403
    # The admin reads both.
    for sha in (own_digests["model.onnx"], other_digests["model.onnx"]):
        assert api.client.get(f"/v1/artifacts/{sha}", headers=api.admin).status_code == 200


def test_manifest_poll_marks_the_device_seen(api: Api) -> None:
    job = submit_job(api)
    finish_job(api, job["id"])
    promote(api, "cams", job["id"])
    device_id, device = _device(api, "cams")
    api.client.get("/v1/deployments/cams/manifest", headers=device)
    with api.sessions() as session:
        row = session.get(Device, device_id)
        assert row is not None and row.last_seen_at is not None


def test_failed_authentications_are_throttled_but_valid_tokens_pass(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, unauthenticated_rate_limit_per_minute=3)
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token()
        bad = {"Authorization": "Bearer ep_guess"}
        assert [client.get("/v1/jobs", headers=bad).status_code for _ in range(3)] == [401] * 3
        throttled = client.get("/v1/jobs", headers=bad)
        assert throttled.status_code == 429
        assert throttled.headers["content-type"] == "application/problem+json"
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        assert client.get("/v1/jobs").status_code == 429  # no token at all: same budget
        # A device with a good token behind the same address is not locked out.
        assert client.get("/v1/jobs", headers=api.admin).status_code == 200
        # Probes never count against anyone.
        assert client.get("/healthz").status_code == 200
