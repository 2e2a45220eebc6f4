"""`fault_stack`: builds a FaultStack (its own PostgreSQL database, queue names and artifact
folder) with per-test settings, and tears everything down afterwards."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from infra.queue import JobQueue
from infra.settings import Settings
from infra.storage import ArtifactStore
from infra.store.db import make_engine, make_session_factory
from tests.conftest import REDIS_URL, migrated_pg_database
from tests.faults.harness import FAST_SETTINGS, FaultStack

MakeStack = Callable[..., FaultStack]


@pytest.fixture
def fault_stack(tmp_path: Path, unique_suffix: str) -> Iterator[MakeStack]:
    """Call it with settings overrides (broker_url, artifacts_url, max_attempts, ...)."""
    made: list[tuple[FaultStack, object]] = []
    databases = ExitStack()

    def make(**overrides: str) -> FaultStack:
        # A database of its own: the reconciler acts on every queued job it can see.
        pg_url = databases.enter_context(migrated_pg_database("edgeprune_faults"))
        values = {
            "database_url": pg_url,
            "broker_url": REDIS_URL,
            "artifacts_url": str(tmp_path / "artifacts"),
            "queue_name": f"gpu-faults-{unique_suffix}",
            "inspect_queue_name": f"inspect-faults-{unique_suffix}",
            "data_dir": str(tmp_path / "data"),
            **FAST_SETTINGS,
            **overrides,
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPRUNE_")}
        env["OMP_NUM_THREADS"] = "1"
        env.update({f"EDGEPRUNE_{k.upper()}": str(v) for k, v in values.items()})
        settings = Settings.model_validate(values)
        engine = make_engine(pg_url)
        stack = FaultStack(
            settings=settings,
            env=env,
            sessions=make_session_factory(engine),
            storage=ArtifactStore(values["artifacts_url"]),
            queue=JobQueue(settings),
            tmp=tmp_path,
        )
        made.append((stack, engine))
        return stack

    with databases:  # dropped last, after every process and connection using them is gone
        try:
            yield make
        finally:
            for stack, engine in made:
                for worker in stack.workers:
                    worker.stop()
                stack.queue.close()
                engine.dispose()  # type: ignore[attr-defined]
                if stack.settings.resolved_broker_url() == REDIS_URL:
                    client = redis.Redis.from_url(REDIS_URL)
                    for key in client.scan_iter(f"*{unique_suffix}*"):
                        client.delete(key)
                    client.close()
