"""Shared fixtures for the real backing services: PostgreSQL and Redis on 127.0.0.1.

Every test session gets its own PostgreSQL database (dropped at the end) and its own queue
names, so engineers running suites in parallel on one machine never see each other's rows or
messages.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.model_plugin import expose_model_plugin, hide_model_plugin

PG_ADMIN_URL = os.environ.get("EDGEPRUNE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("EDGEPRUNE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def _admin_connect() -> Any:
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True)


def create_pg_database(prefix: str = "edgeprune_test") -> str:
    """A new, empty PostgreSQL database; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with _admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def migrated_pg_database(prefix: str = "edgeprune_test") -> Iterator[str]:
    """A new PostgreSQL database at the migrations' head, dropped afterwards; yields its URL."""
    from infra.store.migrate import upgrade_database

    url = create_pg_database(prefix)
    try:
        upgrade_database(url)
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A PostgreSQL database for this test session, migrated to head."""
    with migrated_pg_database() as url:
        yield url


@pytest.fixture(scope="session")
def api_pg_url() -> Iterator[str]:
    """A PostgreSQL database migrated once for the app-level tests that run on both databases
    (tests/support/databases.py); each such test empties it first."""
    with migrated_pg_database("edgeprune_api_both") as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    redis.Redis.from_url(REDIS_URL).ping()
    return REDIS_URL


@pytest.fixture
def unique_suffix() -> str:
    return uuid.uuid4().hex[:10]


_PLUGIN_METADATA = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    # The test networks' entry points exist for this run and the processes it starts only.
    config.stash[_PLUGIN_METADATA] = expose_model_plugin()


def pytest_unconfigure(config: pytest.Config) -> None:
    metadata = config.stash.get(_PLUGIN_METADATA, None)
    if metadata is not None:
        hide_model_plugin(metadata)
