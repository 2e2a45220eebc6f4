"""The real app (migrations, store, storage, SQLite broker) on temporary files, seeded."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from infra.settings import Settings
from infra.storage import ArtifactStore
from infra.store.tokens import create_token
from service.api.main import create_app
from tests.dashboard.seed import Seeded, seed_store


@dataclass
class Dashboard:
    client: TestClient
    admin: dict[str, str]
    seeded: Seeded


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'dashboard.db'}",
        broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        artifacts_url=str(tmp_path / "artifacts"),
        inspect_wait_s=0.3,
        reconcile_interval_s=3600.0,  # the reconciler must not touch the seeded jobs
    )


@pytest.fixture
def dash(settings: Settings) -> Iterator[Dashboard]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        state = client.app.state  # type: ignore[attr-defined]
        sessions: sessionmaker[Session] = state.sessions
        storage: ArtifactStore = state.storage
        seeded = seed_store(sessions, storage)
        with sessions.begin() as session:
            _, secret = create_token(session, "dashboard test", kind="admin")
        yield Dashboard(client=client, admin={"Authorization": f"Bearer {secret}"}, seeded=seeded)
