"""Per-process resources of a worker: settings, DB engine and sessions, artifact store.

Built lazily on first use inside the pool process that runs the task. Engines must not cross
a fork, and with `worker_max_tasks_per_child=1` every job gets a fresh process anyway.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from infra.settings import Settings, get_settings
from infra.storage import ArtifactStore
from infra.store.db import make_engine, make_session_factory


@dataclass(frozen=True)
class WorkerContext:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    storage: ArtifactStore


def build_context(settings: Settings) -> WorkerContext:
    engine = make_engine(settings.resolved_database_url())
    return WorkerContext(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        storage=ArtifactStore(settings.resolved_artifacts_url()),
    )


@lru_cache(maxsize=1)
def get_context() -> WorkerContext:
    return build_context(get_settings())


def worker_name(hostname: str | None = None) -> str:
    """Who runs a job, as shown in the jobs table: Celery node name (or host) and pid."""
    return f"{hostname or socket.gethostname()}:{os.getpid()}"
