"""`edgeprune token create|revoke|list`: tokens straight in the database (EDGEPRUNE_* settings).

These work without a running server: they are how the first admin token of a scaled
deployment (`edgeprune api` on PostgreSQL) comes to exist.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(help="Create, revoke and list API tokens (directly in the database).")


def _sessions() -> tuple[Engine, sessionmaker[Session]]:
    from service.settings import get_settings
    from service.store.db import make_engine, make_session_factory
    from service.store.migrate import upgrade_database

    url = get_settings().resolved_database_url()
    upgrade_database(url)
    engine = make_engine(url)
    return engine, make_session_factory(engine)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="Who or what uses the token.")] = "admin",
) -> None:
    """Create an admin token and print its secret (shown only this once)."""
    from service.store.tokens import create_token

    engine, sessions = _sessions()
    try:
        with sessions.begin() as session:
            token_id, secret = create_token(session, name, kind="admin")
    finally:
        engine.dispose()
    typer.echo(f"created {token_id} ({name}); the secret is shown only now:", err=True)
    typer.echo(secret)


@app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="The token's id (tok_...).")]) -> None:
    """Revoke a token; requests using it are refused from now on."""
    from service.store.tokens import revoke_token

    engine, sessions = _sessions()
    try:
        with sessions.begin() as session:
            revoked = revoke_token(session, token_id)
    finally:
        engine.dispose()
    if not revoked:
        typer.echo(f"error: no live token {token_id}", err=True)
        raise typer.Exit(5)
    typer.echo(f"revoked {token_id}")


@app.command("list")
def list_tokens(
    all_tokens: Annotated[bool, typer.Option("--all", help="Include revoked tokens.")] = False,
) -> None:
    """List tokens (ids, names, kinds; never secrets)."""
    from sqlalchemy import select

    from service.store.models import Token

    engine, sessions = _sessions()
    try:
        with sessions() as session:
            stmt = select(Token).order_by(Token.created_at)
            if not all_tokens:
                stmt = stmt.where(Token.revoked_at.is_(None))
            rows = list(session.scalars(stmt))
    finally:
        engine.dispose()
    for token in rows:
        state = "revoked" if token.revoked_at else "live"
        device = f" device={token.device_id}" if token.device_id else ""
        typer.echo(
            f"{token.id}  {token.kind:<6}  {state:<7}  {token.created_at:%Y-%m-%d %H:%M}  "
            f"{token.name}{device}"
        )
