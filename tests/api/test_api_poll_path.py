"""The manifest poll's fast path (service/api/poll/): what it caches and when it lets go.

The two-process version of the visibility rules is tests/integration/test_poll_two_processes.py.

Each test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, update

from infra.store import deployments as deployment_store
from infra.store.models import Device, Token, utcnow
from infra.store.tokens import revoke_token
from service.api.poll.path import PollPath
from tests.api.api_helpers import Api, finish_job, promote, running_api, submit_job

MANIFEST = "/v1/deployments/cams/manifest"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    with running_api(tmp_path, request.param, "edgeprune_poll_test") as api:
        yield api


def _published(api: Api, onnx: bytes = b"one" * 100) -> str:
    job = submit_job(api)
    finish_job(api, job["id"], onnx=onnx)
    promote(api, "cams", job["id"])
    return str(job["id"])


def _device(api: Api) -> tuple[str, dict[str, str]]:
    created = api.client.post(
        "/v1/devices", json={"name": "cam", "deployment": "cams"}, headers=api.admin
    ).json()
    return created["id"], {"Authorization": f"Bearer {created['token']}"}


def _poll_path(api: Api) -> PollPath:
    found: PollPath = api.client.app.state.poll_path  # type: ignore[attr-defined]
    return found


def _engine(api: Api) -> Engine:
    bound = api.sessions.kw["bind"]
    assert isinstance(bound, Engine)
    return bound


class _Statements:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.seen.append(" ".join(statement.split()))

    def __enter__(self) -> _Statements:
        event.listen(self.engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self)


def _lookups(statements: _Statements) -> list[str]:
    tables = ("tokens", "devices", "deployment", "job_artifacts")
    return [s for s in statements.seen if any(t in s for t in tables)]


def test_a_known_poll_runs_no_query_of_its_own(api: Api) -> None:
    _published(api)
    _, device = _device(api)
    with _Statements(_engine(api)) as first_poll:
        first = api.client.get(MANIFEST, headers=device)
    assert first.status_code == 200
    assert _lookups(first_poll) != []  # the token and the manifest, looked up once
    with _Statements(_engine(api)) as statements:
        again = api.client.get(MANIFEST, headers=device)
        unchanged = api.client.get(
            MANIFEST, headers={**device, "If-None-Match": first.headers["etag"]}
        )
    assert (again.status_code, again.content) == (200, first.content)
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert _lookups(statements) == []


def test_the_fast_path_answers_what_the_route_answers(api: Api) -> None:
    _published(api)
    _, device = _device(api)
    for headers in (device, api.admin):
        api.client.get(MANIFEST, headers=headers)  # cached now
        fast = api.client.get(MANIFEST, headers=headers)
        app = api.client.app
        poll_path = app.state.poll_path  # type: ignore[attr-defined]
        del app.state.poll_path  # type: ignore[attr-defined]
        try:
            routed = api.client.get(MANIFEST, headers=headers)
        finally:
            app.state.poll_path = poll_path  # type: ignore[attr-defined]
        assert fast.content == routed.content
        assert {k: fast.headers[k] for k in ("etag", "cache-control", "content-type")} == {
            k: routed.headers[k] for k in ("etag", "cache-control", "content-type")
        }
    metrics = api.client.get("/metrics", headers=api.admin).text
    assert 'edgeprune_manifest_responses_total{status="200"} 6.0' in metrics
    assert 'route="/v1/deployments/{name}/manifest",status="200"} 6.0' in metrics


def test_changes_committed_by_any_writer_reach_the_next_poll(api: Api) -> None:
    """The store is written directly (as another process or the CLI would): the next poll
    sees each change although the previous answers were cached."""
    first = _published(api, b"one" * 100)
    _, device = _device(api)
    assert api.client.get(MANIFEST, headers=device).json()["job_id"] == first
    second = submit_job(api)
    finish_job(api, second["id"], onnx=b"two" * 100)

    promote(api, "cams", second["id"])
    assert api.client.get(MANIFEST, headers=device).json()["job_id"] == second["id"]
    with api.sessions() as session:
        deployment_store.rollback(session, "cams")
        session.commit()
    assert api.client.get(MANIFEST, headers=device).json()["job_id"] == first

    admin = api.token()
    assert api.client.get(MANIFEST, headers=admin).status_code == 200
    with api.sessions() as session:
        token = session.query(Token).filter(Token.kind == "admin").order_by(Token.created_at)
        assert revoke_token(session, token.all()[-1].id)
        session.commit()
    assert api.client.get(MANIFEST, headers=admin).status_code == 401
    assert api.client.get(MANIFEST, headers=device).status_code == 200


def test_polls_of_a_known_device_are_written_in_batches(api: Api) -> None:
    _published(api)
    device_id, device = _device(api)
    assert api.client.get(MANIFEST, headers=device).status_code == 200  # written at once
    long_ago = utcnow() - timedelta(minutes=10)
    poll_path = _poll_path(api)
    poll_path.last_seen.written(device_id, long_ago)  # as if its last write were long ago
    with api.sessions.begin() as session:
        session.execute(update(Device).where(Device.id == device_id).values(last_seen_at=long_ago))

    assert api.client.get(MANIFEST, headers=device).status_code == 200
    assert _last_seen(api, device_id) < utcnow() - timedelta(minutes=9)  # noted, not written
    pending = poll_path.last_seen.take()
    assert list(pending) == [device_id]
    poll_path.last_seen.write(_engine(api), pending)
    assert _last_seen(api, device_id) > utcnow() - timedelta(minutes=1)


def _last_seen(api: Api, device_id: str) -> Any:
    with api.sessions() as session:
        row = session.get(Device, device_id)
        assert row is not None and row.last_seen_at is not None
        seen = row.last_seen_at
    return seen if seen.tzinfo else seen.replace(tzinfo=utcnow().tzinfo)
