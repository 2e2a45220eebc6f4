"""`edgeprune token create|list|revoke` straight against a database named by settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeprune.cli import app
from infra.settings import get_settings
from infra.store.db import make_engine, make_session_factory
from infra.store.migrate import upgrade_database
from infra.store.tokens import lookup_token

runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    upgrade_database(url)  # as the server that uses it would have
    monkeypatch.setenv("EDGEPRUNE_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_create_list_revoke(database: str) -> None:
    created = runner.invoke(app, ["token", "create", "--name", "ci pipeline"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("ep_") and "\n" not in secret

    engine = make_engine(database)
    try:
        with make_session_factory(engine)() as session:
            token = lookup_token(session, secret)
            assert token is not None and token.kind == "admin" and token.name == "ci pipeline"
            token_id = token.id
            # Only the hash is stored.
            assert secret not in token.token_hash
    finally:
        engine.dispose()

    listing = runner.invoke(app, ["token", "list"])
    assert token_id in listing.stdout and "ci pipeline" in listing.stdout
    assert secret not in listing.stdout

    assert runner.invoke(app, ["token", "revoke", token_id]).exit_code == 0
    assert token_id not in runner.invoke(app, ["token", "list"]).stdout
    assert "revoked" in runner.invoke(app, ["token", "list", "--all"]).stdout
    again = runner.invoke(app, ["token", "revoke", token_id])
    assert again.exit_code == 5


def test_token_commands_refuse_a_database_no_server_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --data-dir a token went into an empty ./edgeprune-data that no server reads."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEPRUNE_DATABASE_URL", raising=False)
    monkeypatch.delenv("EDGEPRUNE_DATA_DIR", raising=False)
    get_settings.cache_clear()
    for command in (["token", "create"], ["token", "list"], ["token", "revoke", "tok_x"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert f"no EdgePrune database at {tmp_path / 'edgeprune-data' / 'edgeprune.db'}" in (
            result.stderr
        )
    assert not (tmp_path / "edgeprune-data").exists()

    served = tmp_path / "served"
    served.mkdir()
    upgrade_database(f"sqlite:///{served / 'edgeprune.db'}")  # what `edgeprune serve` leaves
    created = runner.invoke(app, ["token", "create", "--data-dir", str(served)])
    assert created.exit_code == 0, created.output
    assert f"database: {served / 'edgeprune.db'}" in created.stderr
    listing = runner.invoke(app, ["token", "list", "--data-dir", str(served)])
    assert "admin" in listing.stdout
    get_settings.cache_clear()
