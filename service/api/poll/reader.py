"""Reads the poll generation without a thread hop: the gate awaits it on the event loop.

A worker thread would cost the reads a GIL hand-over each (up to the 5 ms switch interval
while the loop is busy answering polls), which showed as tail latency under load. So:

- PostgreSQL: an asynchronous psycopg connection in autocommit (each read sees the latest
  commit), awaited on the loop.
- SQLite: a read of one row by primary key on a connection of its own, run inline (a few
  microseconds; in WAL mode a reader never waits for a writer).
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any, Protocol

from sqlalchemy import Engine

from infra.store.poll_generation import READ_SQL, Generation

# An inline SQLite read must never park the event loop for long.
SQLITE_READ_TIMEOUT_S = 1.0


class GenerationReader(Protocol):
    async def read(self) -> Generation: ...

    async def close(self) -> None: ...


class _SqliteReader:
    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    async def read(self) -> Generation:
        if self._connection is None:
            # Autocommit: every read is its own snapshot of the latest commit.
            self._connection = sqlite3.connect(
                self._path, timeout=SQLITE_READ_TIMEOUT_S, isolation_level=None
            )
        try:
            # fetchall: the statement runs to its end, so no read snapshot outlives the call.
            (row,) = self._connection.execute(READ_SQL).fetchall()
        except sqlite3.Error:
            await self.close()
            raise
        return Generation(int(row[0]), int(row[1]))

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
            self._connection = None


class _PostgresReader:
    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._connection: Any = None

    async def read(self) -> Generation:
        import psycopg

        if self._connection is None:
            self._connection = await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True
            )
        try:
            cursor = await self._connection.execute(READ_SQL)
            row = await cursor.fetchone()
        except psycopg.Error:
            await self.close()  # a broken connection: the next read opens a new one
            raise
        return Generation(int(row[0]), int(row[1]))

    async def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None


def open_reader(engine: Engine) -> GenerationReader | None:
    """A reader for `engine`'s database; None for an SQLite database that is not a plain
    file (in memory, or a URI), where polls simply take the regular route."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        return _SqliteReader(database)
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return _PostgresReader(plain)
