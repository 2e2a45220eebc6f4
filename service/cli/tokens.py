"""`edgeprune token create|revoke|list`: tokens straight in the database (EDGEPRUNE_* settings).

These work without a running server: they are how the first admin token of a scaled
deployment (`edgeprune api` on PostgreSQL) comes to exist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from edgeprune.contracts.exit_codes import ExitCode
from edgeprune.json_output import JsonOutput

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(help="Create, revoke and list API tokens (directly in the database).")


DataDir = Annotated[
    Path | None,
    typer.Option(
        metavar="DIR",
        help="The data folder of the `edgeprune serve` whose tokens these are (default: "
        "EDGEPRUNE_DATA_DIR, else ./edgeprune-data; EDGEPRUNE_DATABASE_URL overrides both).",
        show_default=False,
    ),
]


def _sessions(data_dir: Path | None) -> tuple[Engine, sessionmaker[Session]]:
    """The database the named server uses. A SQLite file that does not exist yet is refused:
    creating one would hold tokens that no server ever reads."""
    from infra.settings import Settings, get_settings
    from infra.store.db import make_engine, make_session_factory
    from infra.store.migrate import upgrade_database

    settings = get_settings() if data_dir is None else Settings(data_dir=data_dir)
    url = settings.resolved_database_url()
    sqlite_path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else None
    typer.echo(f"database: {sqlite_path or url.split('@')[-1]}", err=True)
    if sqlite_path is not None and not Path(sqlite_path).is_file():
        typer.echo(
            f"error: no EdgePrune database at {sqlite_path}: start `edgeprune serve "
            "--data-dir DIR` there once, or name the server's folder with --data-dir "
            "(or EDGEPRUNE_DATA_DIR / EDGEPRUNE_DATABASE_URL)",
            err=True,
        )
        raise typer.Exit(ExitCode.USAGE)
    upgrade_database(url)
    engine = make_engine(url)
    return engine, make_session_factory(engine)


@app.command("create")
def create(
    name: Annotated[
        str, typer.Option(metavar="NAME", help="Who or what uses the token.")
    ] = "admin",
    data_dir: DataDir = None,
    as_json: JsonOutput = False,
) -> None:
    """Create an admin token and print its secret (shown only this once)."""
    from infra.store.tokens import create_token

    engine, sessions = _sessions(data_dir)
    try:
        with sessions.begin() as session:
            token_id, secret = create_token(session, name, kind="admin")
    finally:
        engine.dispose()
    typer.echo(f"created {token_id} ({name}); the secret is shown only now:", err=True)
    if as_json:
        typer.echo(json.dumps({"id": token_id, "name": name, "kind": "admin", "secret": secret}))
    else:
        typer.echo(secret)


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (tok_...).")],
    data_dir: DataDir = None,
    as_json: JsonOutput = False,
) -> None:
    """Revoke a token; requests using it are refused from now on."""
    from infra.store.tokens import revoke_token

    engine, sessions = _sessions(data_dir)
    try:
        with sessions.begin() as session:
            revoked = revoke_token(session, token_id)
    finally:
        engine.dispose()
    if not revoked:
        typer.echo(f"error: no live token {token_id}", err=True)
        raise typer.Exit(ExitCode.NOT_FOUND)
    typer.echo(json.dumps({"id": token_id, "revoked": True}) if as_json else f"revoked {token_id}")


@app.command("list")
def list_tokens(
    all_tokens: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
    data_dir: DataDir = None,
    as_json: JsonOutput = False,
) -> None:
    """List tokens (ids, names, kinds; never secrets)."""
    from sqlalchemy import select

    from infra.store.models import Token

    engine, sessions = _sessions(data_dir)
    try:
        with sessions() as session:
            stmt = select(Token).order_by(Token.created_at)
            if not all_tokens:
                stmt = stmt.where(Token.revoked_at.is_(None))
            rows = list(session.scalars(stmt))
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps([_token_json(t) for t in rows], indent=2))
        return
    for token in rows:
        state = "revoked" if token.revoked_at else "live"
        device = f" device={token.device_id}" if token.device_id else ""
        typer.echo(
            f"{token.id}  {token.kind:<6}  {state:<7}  {token.created_at:%Y-%m-%d %H:%M}  "
            f"{token.name}{device}"
        )


def _token_json(token: Any) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "kind": token.kind,
        "device_id": token.device_id,
        "created_at": token.created_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
    }
