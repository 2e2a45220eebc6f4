"""The real app (SQLite database, SQLite broker, artifact folder) for the security tests.

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

PROBLEM_JSON = "application/problem+json"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path, unauthenticated_rate_limit_per_minute=100_000, inspect_wait_s=0.0
    )


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token("admin")
        yield api
        # Whatever a test sent, the server must still answer a normal request afterwards.
        assert client.get("/v1/jobs", headers=api.admin).status_code == 200
