"""Start a Celery worker process for EdgePrune (what `edgeprune worker` runs)."""

from __future__ import annotations

import socket

from infra.settings import get_settings
from infra.store.migrate import upgrade_database
from worker.pool import pool_start_method


def node_name(queues: list[str], name: str | None) -> str:
    """The Celery node name: `name` with %h expanded to this host (as Celery does), or
    FIRST_QUEUE@HOST."""
    host = socket.gethostname()
    return name.replace("%h", host) if name else f"{queues[0] if queues else 'gpu'}@{host}"


def worker_argv(queues: list[str], concurrency: int, name: str | None, loglevel: str) -> list[str]:
    settings = get_settings()
    # The settings name the real queues (tests and multi-tenant brokers rename them).
    aliases = {"gpu": settings.queue_name, "inspect": settings.inspect_queue_name}
    resolved = [aliases.get(q, q) for q in queues] or [settings.queue_name]
    node = node_name(queues, name)
    return [
        "worker",
        f"--queues={','.join(resolved)}",
        f"--concurrency={concurrency}",
        f"--hostname={node}",
        f"--loglevel={loglevel}",
        # Prefork: time limits and max-tasks-per-child need it. Its processes are spawned
        # where a threaded pool would fork (see worker/pool.py). No gossip/mingle/heartbeat
        # chatter between nodes: jobs are coordinated through the database.
        "--pool=prefork",
        f"--pool-start-method={pool_start_method(settings.resolved_broker_url())}",
        "--without-gossip",
        "--without-mingle",
    ]


def run_worker(queues: list[str], concurrency: int, name: str | None, loglevel: str) -> None:
    settings = get_settings()
    upgrade_database(settings.resolved_database_url())
    # Importing the tasks in this (parent) process loads torch and the engine once; pool
    # processes forked per job then start in milliseconds (spawned ones import them again).
    # No CUDA context, SQLite connection or engine exists here when the pool starts: those
    # are created in the child (worker/context.py), so forking stays safe.
    import worker.tasks  # noqa: F401
    from worker.app import app
    from worker.architectures import report_architectures

    report_architectures(settings, node_name(queues, name))

    app.worker_main(argv=worker_argv(queues, concurrency, name, loglevel))
