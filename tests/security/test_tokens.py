"""Tokens: looked up by hash and compared in constant time, stored only as hashes, and
revoked by `edgeprune token revoke` with effect on the very next request."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event, select
from typer.testing import CliRunner

from edgeprune.cli import app as cli_app
from infra.settings import Settings, get_settings
from infra.store.models import Token
from tests.api.api_helpers import Api, finish_job, promote, submit_job

runner = CliRunner()


def _secret(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def cli_database(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The CLI pointed at the running app's database, as an operator's shell would be."""
    assert settings.database_url is not None
    monkeypatch.setenv("EDGEPRUNE_DATABASE_URL", settings.database_url)
    get_settings.cache_clear()
    yield settings.database_url
    get_settings.cache_clear()


def _captured_sql(api: Api) -> list[str]:
    """Every statement and parameter list the app sends to the database, as text."""
    seen: list[str] = []
    engine = api.client.app.state.sessions.kw["bind"]  # type: ignore[attr-defined]

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append(f"{statement} {parameters!r}")

    event.listen(engine, "before_cursor_execute", record)
    return seen


def test_lookup_is_by_hash_and_the_database_never_sees_the_secret(api: Api) -> None:
    secret = _secret(api.admin)
    seen = _captured_sql(api)
    assert api.client.get("/v1/jobs", headers=api.admin).status_code == 200
    assert (
        api.client.get("/v1/jobs", headers={"Authorization": "Bearer ep_guess"}).status_code == 401
    )
    sql = "\n".join(seen)
    assert hashlib.sha256(secret.encode()).hexdigest() in sql
    assert secret not in sql and "ep_guess" not in sql


def test_hashes_are_compared_with_hmac_compare_digest(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, str]] = []
    verdict = {"equal": True}

    def compare_digest(a: str, b: str) -> bool:
        calls.append((a, b))
        return verdict["equal"]

    monkeypatch.setattr("service.api.deps.hmac", SimpleNamespace(compare_digest=compare_digest))
    digest = hashlib.sha256(_secret(api.admin).encode()).hexdigest()
    assert api.client.get("/v1/jobs", headers=api.admin).status_code == 200
    assert calls == [(digest, digest)]
    # The comparison's answer is what decides: a "different" hash is refused.
    verdict["equal"] = False
    assert api.client.get("/v1/jobs", headers=api.admin).status_code == 401


def _publish_cams(api: Api) -> None:
    """Devices register only for a deployment that exists."""
    job = submit_job(api)
    finish_job(api, job["id"])
    promote(api, "cams", job["id"])


def test_the_database_holds_no_secret(api: Api, settings: Settings, cli_database: str) -> None:
    created = runner.invoke(cli_app, ["token", "create", "--name", "ops"])
    assert created.exit_code == 0, created.output
    cli_secret = created.stdout.strip()
    _publish_cams(api)
    device = api.client.post(
        "/v1/devices", json={"name": "cam", "deployment": "cams"}, headers=api.admin
    ).json()
    secrets = [_secret(api.admin), cli_secret, device["token"]]
    # Every token works...
    for secret in secrets:
        headers = {"Authorization": f"Bearer {secret}"}
        assert api.client.get("/v1/artifacts/" + "0" * 64, headers=headers).status_code in (
            403,
            404,
        )
    # ...yet no secret is in any table, nor anywhere in the database files (WAL included).
    with api.sessions() as session:
        hashes = set(session.scalars(select(Token.token_hash)))
    assert hashes >= {hashlib.sha256(s.encode()).hexdigest() for s in secrets}
    assert (
        api.client.get(f"/v1/devices/{device['id']}", headers=api.admin).json().get("token") is None
    )
    raw = _everything_stored(cli_database)
    for secret in secrets:
        assert secret.encode() not in raw
        assert secret.removeprefix("ep_").encode() not in raw


def _everything_stored(database_url: str) -> bytes:
    """SQLite: the database's files, WAL included. PostgreSQL: every row of every table, as
    text (what a dump of the database would hold)."""
    if database_url.startswith("sqlite"):
        files = list(Path(database_url.removeprefix("sqlite:///")).parent.glob("api.db*"))
        assert files, "the test's SQLite files were not found"
        return b"".join(f.read_bytes() for f in files)
    import psycopg

    plain = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        assert "tokens" in tables
        rows = [
            str(row[0])
            for table in tables
            for row in connection.execute(f'SELECT t::text FROM "{table}" t')
        ]
    assert rows, "the database holds no rows"
    return "\n".join(rows).encode()


def _token_id(cli_listing: str, name: str) -> str:
    for line in cli_listing.splitlines():
        if line.rstrip().endswith(name) or f" {name} device=" in line:
            return line.split()[0]
    raise AssertionError(f"no token {name!r} in:\n{cli_listing}")


def test_cli_revoke_takes_effect_on_the_next_request(api: Api, cli_database: str) -> None:
    created = runner.invoke(cli_app, ["token", "create", "--name", "ci"])
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    _publish_cams(api)
    device = api.client.post(
        "/v1/devices", json={"name": "cam-1", "deployment": "cams"}, headers=api.admin
    ).json()
    device_headers = {"Authorization": f"Bearer {device['token']}"}
    assert api.client.get("/v1/jobs", headers=headers).status_code == 200
    assert api.client.get("/v1/artifacts/" + "0" * 64, headers=device_headers).status_code == 403

    listing = runner.invoke(cli_app, ["token", "list"]).stdout
    for token_id in (_token_id(listing, "ci"), _token_id(listing, "device cam-1")):
        revoked = runner.invoke(cli_app, ["token", "revoke", token_id])
        assert revoked.exit_code == 0, revoked.output

    # No cache anywhere: the running API refuses both at once; other tokens are unaffected.
    refused = api.client.get("/v1/jobs", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["detail"] == "the bearer token is unknown or revoked"
    assert api.client.get("/v1/artifacts/" + "0" * 64, headers=device_headers).status_code == 401
    assert api.client.get("/v1/jobs", headers=api.admin).status_code == 200
