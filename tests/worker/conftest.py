"""A worker context on a fresh SQLite database and a local artifact folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.settings import Settings
from infra.store.migrate import upgrade_database
from worker.context import WorkerContext, build_context

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[WorkerContext]:
    settings = Settings(
        data_dir=tmp_path / "data",
        heartbeat_interval_s=0.2,
        heartbeat_timeout_s=5,
    )
    upgrade_database(settings.resolved_database_url())
    context = build_context(settings)
    yield context
    context.engine.dispose()
