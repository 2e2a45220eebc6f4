"""The real app (SQLite or PostgreSQL database, SQLite broker, artifact folder) for the
security tests: the `settings` fixture runs each test on both databases.

Same wiring as tests/api (see api_helpers.py); the failed-authentication budget is raised
so that tests which send many bad tokens on purpose are not throttled, except where the
throttle itself is under test.
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

PROBLEM_JSON = "application/problem+json"


@pytest.fixture(params=DATABASES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        unauthenticated_rate_limit_per_minute=100_000,
        inspect_wait_s=0.0,
        **database_for_test(request, tmp_path),
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token("admin")
        yield api
        # Whatever a test sent, the server must still answer a normal request afterwards.
        assert client.get("/v1/jobs", headers=api.admin).status_code == 200
