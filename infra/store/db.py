"""Engines and sessions for the job store: SQLite (the embedded default) or PostgreSQL by URL.

SQLite is tuned for several processes sharing one file (API, gpu worker, inspect worker):
WAL so readers never block the writer, a busy timeout so a writer waits for the lock instead
of failing at once, and foreign keys switched on (SQLite leaves them off per connection).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str) -> str:
    """Point plain PostgreSQL URLs at psycopg 3, the driver we ship (not SQLAlchemy's psycopg2)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(url: str) -> bool:
    return make_url(normalize_url(url)).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL + NORMAL is durable across process crashes (only an OS crash can lose the
        # last commits), which is the failure the service is built to survive.
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`; creates the parent folder of a SQLite file."""
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = dict(kwargs.pop("connect_args", {}))
        # The pool hands a connection to one thread at a time; the worker's heartbeat thread
        # and the reconciler thread share the engine with the main thread.
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: rows read in a session stay usable after commit (API responses
    # are built after the commit; the worker keeps the job row it started with).
    return sessionmaker(bind=engine, expire_on_commit=False)


def execute_returning(session: Session, stmt: Any) -> Any:
    """Run an ORM-enabled UPDATE ... RETURNING and give its first row (None: no row matched).

    synchronize_session=False: the statement already says what changed, and callers that
    hold the row refresh it themselves if they need to.
    """
    return session.execute(stmt.execution_options(synchronize_session=False)).first()


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
