"""Apply the job store's Alembic migrations; every deployable calls this on start."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from infra.store.db import make_engine, normalize_url

_HERE = Path(__file__).resolve().parent
# Any fixed 64-bit number: the PostgreSQL advisory lock that serialises concurrent upgrades.
_PG_LOCK_KEY = 0x6564_6765_7072_756E  # "edgeprun"


def alembic_config() -> Config:
    cfg = Config(str(_HERE / "alembic.ini"))
    cfg.set_main_option("script_location", str(_HERE / "migrations"))
    return cfg


@contextmanager
def _sqlite_file_lock(database: str | None) -> Iterator[None]:
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    lock_path = Path(database).with_name(Path(database).name + ".migrate.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _upgrade_on(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)
    connection.commit()


def upgrade_database(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision`; safe when several processes start at once.

    The API and every worker call this on start (compose starts them together): PostgreSQL
    upgrades take an advisory lock, SQLite upgrades a lock file next to the database, so one
    process migrates and the others then find nothing to do.
    """
    url = normalize_url(url)
    engine = make_engine(url)
    try:
        backend = make_url(url).get_backend_name()
        if backend == "postgresql":
            with engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK_KEY})
                conn.commit()
                try:
                    _upgrade_on(conn, revision)
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
                    conn.commit()
        elif backend == "sqlite":
            with _sqlite_file_lock(make_url(url).database), engine.connect() as conn:
                _upgrade_on(conn, revision)
        else:
            with engine.connect() as conn:
                _upgrade_on(conn, revision)
    finally:
        engine.dispose()
