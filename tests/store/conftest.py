"""Store fixtures: each test runs against a fresh SQLite file and the session's PostgreSQL DB."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from infra.store.db import make_engine, make_session_factory
from infra.store.migrate import upgrade_database
from tests.store.rows import add_job


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        upgrade_database(url)
        return url
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def new_job(sessions: sessionmaker[Session]) -> Callable[..., str]:
    return lambda **fields: add_job(sessions, **fields)
