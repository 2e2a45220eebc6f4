"""A real app on a temporary database (SQLite, and PostgreSQL too: tests/support/databases.py),
SQLite broker and artifact folder.

Everything behind the routes is the real thing (migrations, store, storage, kombu's SQLite
transport); see api_helpers.py for how worker-side state is seeded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from infra.settings import Settings
from service.api.main import create_app
from tests.api.api_helpers import Api, make_settings
from tests.support.databases import DATABASES, database_for_test


@pytest.fixture(params=DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return make_settings(tmp_path, **database_for_test(request, tmp_path))


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token("admin")
        yield api
