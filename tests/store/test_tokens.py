"""Tokens are stored as sha256 only; lookup finds live tokens by their secret."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from infra.store import tokens
from infra.store.models import Token


def test_create_stores_only_the_hash_and_lookup_finds_it(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        assert not tokens.has_admin_token(session)
        token_id, secret = tokens.create_token(session, "ops")
        assert tokens.has_admin_token(session)
    assert secret.startswith("ep_") and len(secret) > 40
    with sessions() as session:
        row = session.get(Token, token_id)
        assert row is not None
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        # The secret appears in no column of the row.
        stored = [str(getattr(row, c.key)) for c in Token.__table__.columns]
        assert not any(secret in value for value in stored)
        found = tokens.lookup_token(session, secret)
        assert found is not None and (found.id, found.kind) == (token_id, "admin")
        assert tokens.lookup_token(session, secret + "x") is None
        assert tokens.lookup_token(session, "") is None


def test_revoked_tokens_no_longer_authenticate(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        token_id, secret = tokens.create_token(session, "temp")
        assert tokens.revoke_token(session, token_id)
        assert not tokens.revoke_token(session, token_id)
    with sessions() as session:
        assert tokens.lookup_token(session, secret) is None
        assert session.scalar(select(Token.revoked_at).where(Token.id == token_id)) is not None


def test_device_tokens_need_a_device(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        with pytest.raises(ValueError):
            tokens.create_token(session, "d", kind="device")
        with pytest.raises(ValueError):
            tokens.create_token(session, "x", kind="root")
        _token_id, secret = tokens.create_token(session, "d", kind="device", device_id="dev_1")
        found = tokens.lookup_token(session, secret)
        assert found is not None and found.device_id == "dev_1"
