"""Who may call what: every route of the app × every kind of caller → the expected status.

The routes are read from the app itself, so a route added without a row here fails
`test_every_route_has_an_expectation`. One world is seeded per module (two deployments,
each with a registered device); each row runs all six callers, the admin last, and only the
admin's successful request may change anything. No row's expectation depends on another
row's change (the rollback, the cancel and the promotion each touch their own rows).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.routing import Mount

from infra.store import deployments
from infra.store.models import Token
from infra.store.tokens import hash_secret, revoke_token
from service.api.main import create_app
from tests.api.api_helpers import (
    Api,
    finish_job,
    job_body,
    make_settings,
    npz_bytes,
    promote,
    seed_dataset,
    seed_model,
    submit_job,
)
from tests.security.conftest import PROBLEM_JSON
from tests.support.databases import DATABASES, migrated_database

# Callers, in the order they are tried (the admin last, see the module docstring).
CALLERS = ("none", "bad", "revoked", "other_device", "own_device", "admin")


@dataclass
class World:
    """Seeded rows and one set of credentials per caller."""

    headers: dict[str, dict[str, str]]
    model_id: str
    dataset_id: str
    queued_job: str
    done_job: str
    spare_job: str
    own_device: str
    artifact: str
    # Devices only the revoke and the delete rows touch.
    revoked_device: str
    deleted_device: str


def _device(api: Api, deployment: str, name: str | None = None) -> tuple[str, dict[str, str]]:
    response = api.client.post(
        "/v1/devices",
        json={"name": name or f"cam-{deployment}", "deployment": deployment},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


def _revoked(api: Api) -> dict[str, str]:
    headers = api.token("admin")
    secret = headers["Authorization"].removeprefix("Bearer ")
    with api.sessions() as session:
        token_id = session.scalar(select(Token.id).where(Token.token_hash == hash_secret(secret)))
        assert token_id is not None and revoke_token(session, token_id)
        session.commit()
    return headers


def seed_world(api: Api) -> World:
    first, second, spare = (submit_job(api)["id"] for _ in range(3))
    digests = finish_job(api, first, onnx=b"cams-v1" * 20)
    finish_job(api, second, onnx=b"cams-v2" * 20)
    finish_job(api, spare, onnx=b"spare" * 20)
    promote(api, "cams", first)
    promote(api, "cams", second)  # two versions: rollback has somewhere to go
    doors = submit_job(api)["id"]
    finish_job(api, doors, onnx=b"doors" * 20)
    promote(api, "doors", doors)
    # "gates": a staged rollout in progress, for the widen row.
    gates = [submit_job(api)["id"] for _ in range(2)]
    for job_id in gates:
        finish_job(api, job_id, onnx=job_id.encode() * 20)
    promote(api, "gates", gates[0])
    with api.sessions.begin() as session:
        deployments.promote(session, "gates", gates[1], percent=10)
    own_id, own = _device(api, "cams")
    _, other = _device(api, "doors")
    return World(
        headers={
            "none": {},
            "bad": {"Authorization": "Bearer ep_not-a-real-token"},
            "revoked": _revoked(api),
            "admin": api.admin,
            "own_device": own,
            "other_device": other,
        },
        model_id=seed_model(api),
        dataset_id=seed_dataset(api),
        queued_job=submit_job(api)["id"],
        done_job=first,
        spare_job=spare,
        own_device=own_id,
        artifact=digests["model.onnx"],
        revoked_device=_device(api, "doors", "to-revoke")[0],
        deleted_device=_device(api, "doors", "to-delete")[0],
    )


# --- request bodies ---------------------------------------------------------------------


def _checkpoint_upload(world: World) -> dict[str, Any]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("m/data.pkl", b"\x80\x02}q\x00.")  # an empty dict, as torch.save writes
    fields = {"arch": "vgg11", "num_classes": "10", "input_shape": "1,8,8"}
    return {"files": {"file": ("m.pt", buffer.getvalue())}, "data": fields}


def _dataset_upload(world: World) -> dict[str, Any]:
    data = npz_bytes(x=np.zeros((6, 1, 4, 4), np.float32), y=np.array([0, 1] * 3))
    return {"files": {"file": ("d.npz", data)}}


Body = Callable[[World], dict[str, Any]]


@dataclass(frozen=True)
class Row:
    """One route: how to call it, and the status each caller must get."""

    url: str  # formatted with the World's fields
    expect: dict[str, int]
    body: Body = field(default=lambda world: {})


def public(status: int = 200) -> dict[str, int]:
    return dict.fromkeys(CALLERS, status)


def admin_only(status: int) -> dict[str, int]:
    return {
        "none": 401,
        "bad": 401,
        "revoked": 401,
        "other_device": 403,
        "own_device": 403,
        "admin": status,
    }


def own_device_too(status: int) -> dict[str, int]:
    return {**admin_only(status), "own_device": status}


def json_body(make: Callable[[World], dict[str, Any]]) -> Body:
    return lambda world: {"json": make(world)}


ROWS: dict[tuple[str, str], Row] = {
    # Public: probes, the API description and the dashboard's data-free page shells.
    ("GET", "/healthz"): Row("/healthz", public()),
    ("GET", "/readyz"): Row("/readyz", public()),
    ("GET", "/openapi.json"): Row("/openapi.json", public()),
    ("HEAD", "/openapi.json"): Row("/openapi.json", public()),
    ("GET", "/docs"): Row("/docs", public()),
    ("HEAD", "/docs"): Row("/docs", public()),
    ("GET", "/docs/oauth2-redirect"): Row("/docs/oauth2-redirect", public()),
    ("HEAD", "/docs/oauth2-redirect"): Row("/docs/oauth2-redirect", public()),
    ("GET", "/"): Row("/", public()),
    ("GET", "/login"): Row("/login", public()),
    ("GET", "/jobs/new"): Row("/jobs/new", public()),
    ("GET", "/jobs/{job_id}"): Row("/jobs/{done_job}", public()),
    ("GET", "/deployments"): Row("/deployments", public()),
    ("GET", "/static"): Row("/static/js/api.js", public()),
    # Admin only.
    ("GET", "/metrics"): Row("/metrics", admin_only(200)),
    ("POST", "/v1/models"): Row("/v1/models", admin_only(202), _checkpoint_upload),
    ("GET", "/v1/models"): Row("/v1/models", admin_only(200)),
    ("GET", "/v1/models/{model_id}"): Row("/v1/models/{model_id}", admin_only(200)),
    ("GET", "/v1/architectures"): Row("/v1/architectures", admin_only(200)),
    ("POST", "/v1/datasets"): Row("/v1/datasets", admin_only(201), _dataset_upload),
    ("GET", "/v1/datasets"): Row("/v1/datasets", admin_only(200)),
    ("GET", "/v1/datasets/{dataset_id}"): Row("/v1/datasets/{dataset_id}", admin_only(200)),
    ("POST", "/v1/jobs"): Row(
        "/v1/jobs", admin_only(202), json_body(lambda w: job_body(w.model_id, w.dataset_id))
    ),
    ("GET", "/v1/jobs"): Row("/v1/jobs", admin_only(200)),
    ("GET", "/v1/jobs/events"): Row("/v1/jobs/events?after=0&follow=false", admin_only(200)),
    ("GET", "/v1/jobs/{job_id}"): Row("/v1/jobs/{done_job}", admin_only(200)),
    ("GET", "/v1/jobs/{job_id}/events"): Row("/v1/jobs/{done_job}/events", admin_only(200)),
    ("POST", "/v1/jobs/{job_id}/cancel"): Row("/v1/jobs/{queued_job}/cancel", admin_only(200)),
    ("GET", "/v1/jobs/{job_id}/report"): Row("/v1/jobs/{done_job}/report", admin_only(200)),
    ("GET", "/v1/jobs/{job_id}/artifacts"): Row("/v1/jobs/{done_job}/artifacts", admin_only(200)),
    ("GET", "/v1/jobs/{job_id}/artifacts/{name}"): Row(
        "/v1/jobs/{done_job}/artifacts/model.onnx", admin_only(200)
    ),
    ("GET", "/v1/deployments"): Row("/v1/deployments", admin_only(200)),
    ("PUT", "/v1/deployments/{name}"): Row(
        "/v1/deployments/cams", admin_only(200), json_body(lambda w: {"job_id": w.spare_job})
    ),
    ("GET", "/v1/deployments/{name}"): Row("/v1/deployments/cams", admin_only(200)),
    ("POST", "/v1/deployments/{name}/rollback"): Row(
        "/v1/deployments/cams/rollback", admin_only(200)
    ),
    ("POST", "/v1/deployments/{name}/widen"): Row("/v1/deployments/gates/widen", admin_only(200)),
    ("GET", "/v1/deployments/{name}/fleet"): Row("/v1/deployments/cams/fleet", admin_only(200)),
    ("GET", "/v1/deployments/{name}/devices"): Row("/v1/deployments/cams/devices", admin_only(200)),
    ("POST", "/v1/devices/{device_id}/revoke"): Row(
        "/v1/devices/{revoked_device}/revoke", admin_only(200)
    ),
    ("DELETE", "/v1/devices/{device_id}"): Row("/v1/devices/{deleted_device}", admin_only(204)),
    ("POST", "/v1/devices"): Row(
        "/v1/devices", admin_only(201), json_body(lambda w: {"name": "n", "deployment": "cams"})
    ),
    ("GET", "/v1/devices"): Row("/v1/devices", admin_only(200)),
    ("GET", "/v1/devices/{device_id}"): Row("/v1/devices/{own_device}", admin_only(200)),
    ("GET", "/v1/devices/{device_id}/reports"): Row(
        "/v1/devices/{own_device}/reports", admin_only(200)
    ),
    # A device token: its own deployment's manifest and artifacts, its own reports.
    ("GET", "/v1/deployments/{name}/manifest"): Row(
        "/v1/deployments/cams/manifest", own_device_too(200)
    ),
    ("GET", "/v1/artifacts/{sha256}"): Row("/v1/artifacts/{artifact}", own_device_too(200)),
    ("HEAD", "/v1/artifacts/{sha256}"): Row("/v1/artifacts/{artifact}", own_device_too(200)),
    ("POST", "/v1/devices/{device_id}/reports"): Row(
        "/v1/devices/{own_device}/reports",
        own_device_too(201),
        json_body(lambda w: {"status": "ok", "version": 2}),
    ),
}


def app_routes(api: Api) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves, mounts included."""
    found: set[tuple[str, str]] = set()
    for route in iter_route_contexts(api.client.app.routes):  # type: ignore[attr-defined]
        if isinstance(route.original_route, Mount):
            found.add(("GET", route.path or ""))
            continue
        for method in route.methods or ():
            found.add((method, route.path or ""))
    return found


@pytest.fixture(scope="module", params=DATABASES)
def matrix(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, World]]:
    folder = tmp_path_factory.mktemp("matrix")
    with migrated_database(request.param, folder, "edgeprune_authz") as database_url:
        settings = make_settings(
            folder,
            database_url=database_url,
            unauthenticated_rate_limit_per_minute=100_000,
            inspect_wait_s=0.0,
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            api = Api(client=client, admin={}, settings=settings)
            api.admin = api.token("admin")
            yield api, seed_world(api)
            assert client.get("/v1/jobs", headers=api.admin).status_code == 200


def test_every_route_has_an_expectation(api: Api) -> None:
    served = app_routes(api)
    assert served - ROWS.keys() == set(), "routes without an authorization row"
    assert ROWS.keys() - served == set(), "rows for routes the app no longer serves"


@pytest.mark.parametrize("key", sorted(ROWS), ids=lambda key: f"{key[0]} {key[1]}")
def test_authorization_matrix(matrix: tuple[Api, World], key: tuple[str, str]) -> None:
    api, world = matrix
    row = ROWS[key]
    method, url = key[0], row.url.format(**vars(world))
    got: dict[str, int] = {}
    for caller in CALLERS:
        response = api.client.request(method, url, headers=world.headers[caller], **row.body(world))
        got[caller] = response.status_code
        if response.status_code in (401, 403) and method != "HEAD":
            assert response.headers["content-type"] == PROBLEM_JSON, response.text
        if response.status_code == 401:
            assert response.headers["www-authenticate"] == 'Bearer realm="edgeprune"'
    assert got == row.expect


@pytest.mark.parametrize(
    "key",
    sorted(k for k, row in ROWS.items() if row.expect["none"] == 401 and k[0] in ("POST", "PUT")),
    ids=lambda key: f"{key[0]} {key[1]}",
)
def test_without_a_token_the_body_is_never_looked_at(
    matrix: tuple[Api, World], key: tuple[str, str]
) -> None:
    """Malformed JSON or a broken multipart body from a caller without a valid token is a
    401, not a 422 telling them about the body (and the attempt counts as a failed login)."""
    api, world = matrix
    url = ROWS[key].url.format(**vars(world))
    for caller in ("none", "bad", "revoked"):
        for content_type in ("application/json", "multipart/form-data; boundary=x"):
            response = api.client.request(
                key[0],
                url,
                content=b'{"unterminated": ',
                headers={**world.headers[caller], "content-type": content_type},
            )
            assert response.status_code == 401, (caller, content_type, response.text)
