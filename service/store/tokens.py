"""API tokens. Only the sha256 of a secret is stored; the secret is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.store.models import Token, utcnow

# A recognisable prefix makes leaked tokens easy to grep for in logs and repositories.
SECRET_PREFIX = "ep_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session, name: str, kind: str = "admin", device_id: str | None = None
) -> tuple[str, str]:
    """Create a token and return (token_id, secret). The secret is not recoverable later."""
    if kind not in ("admin", "device"):
        raise ValueError(f"token kind must be admin or device, got {kind!r}")
    if kind == "device" and not device_id:
        raise ValueError("a device token needs a device_id")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    token = Token(name=name, kind=kind, token_hash=hash_secret(secret), device_id=device_id)
    session.add(token)
    session.flush()
    return token.id, secret


def lookup_token(session: Session, secret: str) -> Token | None:
    """The live (not revoked) token with this secret, or None."""
    if not secret:
        return None
    token = session.scalar(select(Token).where(Token.token_hash == hash_secret(secret)))
    if token is None or token.revoked_at is not None:
        return None
    return token


def revoke_token(session: Session, token_id: str) -> bool:
    result = session.execute(
        update(Token)
        .where(Token.id == token_id, Token.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def has_admin_token(session: Session) -> bool:
    stmt = select(Token.id).where(Token.kind == "admin", Token.revoked_at.is_(None)).limit(1)
    return session.scalar(stmt) is not None
