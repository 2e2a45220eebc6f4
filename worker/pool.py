"""How the worker's pool processes are started: forked, or spawned as fresh interpreters.

Celery drives its prefork pool from the main thread's event loop only when the broker
transport is asynchronous (Redis, AMQP). With any other transport (the embedded `sqla+sqlite`
one among them) it runs billiard's threaded pool: a Supervisor thread forks the replacement
pool process (one per job: `worker_max_tasks_per_child=1`) while the main thread polls the
broker through SQLAlchemy and SQLite. The sqlite3 module releases the GIL inside SQLite, so
the fork can land while the main thread holds one of SQLite's process-wide mutexes (its
allocator's, for one); the child inherits it locked, and its first SQLite call waits forever
(seen as a pool process stuck in `pthread_mutex_lock` under `sqlite3Malloc`, and reproduced
by tests/worker/test_pool.py). Such workers spawn their pool processes instead: fork+exec
runs no code of the parent's in the child, so no lock, connection or engine crosses over.
"""

from __future__ import annotations

from typing import Literal

from kombu import Connection

StartMethod = Literal["fork", "spawn"]


def forks_from_main_thread(broker_url: str) -> bool:
    """True when Celery will run its event loop (and so start pool processes) on the main
    thread: the transport is asynchronous. Mirrors `celery.worker.WorkController
    .should_use_eventloop` on Linux."""
    return bool(Connection(broker_url).get_transport_cls().implements.asynchronous)


def pool_start_method(broker_url: str) -> StartMethod:
    """`fork` where only the main thread forks (fast: torch is already imported); else
    `spawn`, since forking a process whose other threads use SQLite can hang the child."""
    return "fork" if forks_from_main_thread(broker_url) else "spawn"
