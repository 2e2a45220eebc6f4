"""API tokens. Only the sha256 of a secret is stored; the secret is shown once, at creation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from infra.store import poll_generation
from infra.store.models import Device, Token, utcnow

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
    revoked = bool(result.rowcount)  # type: ignore[attr-defined]
    if revoked:
        poll_generation.credentials_changed(session)
    return revoked


def has_admin_token(session: Session) -> bool:
    stmt = select(Token.id).where(Token.kind == "admin", Token.revoked_at.is_(None)).limit(1)
    return session.scalar(stmt) is not None


@dataclass(frozen=True, slots=True)
class LiveIdentity:
    """Who a live token speaks for, read in one query (the device poll path caches it)."""

    token_id: str
    kind: str
    token_hash: str
    device_id: str | None
    # The device's deployment and last poll; None for admin tokens.
    deployment: str | None
    last_seen_at: datetime | None


_IDENTITY = (
    select(
        Token.id,
        Token.kind,
        Token.token_hash,
        Token.device_id,
        Device.deployment,
        Device.last_seen_at,
        Device.revoked_at,
    )
    .outerjoin(Device, Device.id == Token.device_id)
    .where(Token.token_hash == bindparam("digest"), Token.revoked_at.is_(None))
)


def live_identity(session: Session, digest: str) -> LiveIdentity | None:
    """The live token whose secret hashes to `digest`, with its live device; None when the
    token is unknown or revoked, or a device token's device is gone or revoked."""
    row = session.execute(_IDENTITY, {"digest": digest}).one_or_none()
    if row is None:
        return None
    token_id, kind, token_hash, device_id, deployment, last_seen_at, device_revoked = row
    if kind != "admin" and (deployment is None or device_revoked is not None):
        return None
    return LiveIdentity(token_id, kind, token_hash, device_id, deployment, last_seen_at)
