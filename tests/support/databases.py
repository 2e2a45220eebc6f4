"""The job store under the API and security tests: SQLite, and PostgreSQL as well.

Some failures exist on one database only (types, constraints, locking), so the tests that
build the app from the `settings` fixture run on both. Starting from an empty database per
test would run every migration each time; instead:

- SQLite: one migrated file per test process, copied for each test;
- PostgreSQL: one migrated database per test session (`api_pg_url` in tests/conftest.py),
  emptied before each test (`empty_pg_database`), or a database of its own for a module
  (`migrated_database`).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Parameters of a fixture that gives the database kind; PostgreSQL is an integration test.
DATABASES: list[Any] = ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]


@functools.cache
def _sqlite_template() -> Path:
    from infra.store.migrate import upgrade_database

    folder = Path(tempfile.mkdtemp(prefix="edgeprune-test-db-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "template.db"
    upgrade_database(f"sqlite:///{path}")
    # WAL mode: fold the log into the file, so that the file alone is the whole database.
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def migrated_sqlite_url(path: Path) -> str:
    """A SQLite database at `path` already at the migrations' head."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template(), path)
    return f"sqlite:///{path}"


def empty_pg_database(url: str) -> None:
    """Remove every row of the migrated PostgreSQL database at `url` (the schema and its
    migration stamp stay), so the next test starts as on a fresh database."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as connection:
        # A connection left inside a transaction would make TRUNCATE wait forever.
        connection.execute("SET lock_timeout = '20s'")
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
        ]
        if tables:
            names = ", ".join(f'"{name}"' for name in tables)
            connection.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@contextmanager
def migrated_database(kind: str, folder: Path, prefix: str = "edgeprune_module") -> Iterator[str]:
    """A migrated database of its own, SQLite (a file in `folder`) or PostgreSQL (dropped
    afterwards); yields its URL."""
    if kind == "sqlite":
        yield migrated_sqlite_url(folder / "api.db")
        return
    from tests.conftest import migrated_pg_database

    with migrated_pg_database(prefix) as url:
        yield url


def database_for_test(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings overrides that put one test on the database its `request.param` names: a
    migrated SQLite copy, or the session's PostgreSQL database, emptied."""
    if request.param == "sqlite":
        return {}
    url: str = request.getfixturevalue("api_pg_url")
    empty_pg_database(url)
    return {"database_url": url}
