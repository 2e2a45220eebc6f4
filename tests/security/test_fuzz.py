"""Schemathesis against the app's own OpenAPI document: no 5xx, and every answer (status,
content type, body, headers) is one the document declares.

On SQLite and on PostgreSQL (some failures exist on one only). Bounded and repeatable: a fixed
number of derandomized examples per operation, valid (positive) and invalid (negative) inputs,
run in-process against the ASGI app with an admin token; about half a minute per database.
Every failure of every operation is collected and shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import checks

from infra.store.db import make_engine, make_session_factory
from infra.store.tokens import create_token
from service.api.main import create_app
from tests.api.api_helpers import make_settings
from tests.support.databases import DATABASES, migrated_database

EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 30, schemathesis.GenerationMode.NEGATIVE: 20}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module", params=DATABASES)
def fuzzed_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[FastAPI, str]]:
    """The app and an admin secret, on SQLite and on PostgreSQL. Schemathesis runs the app's
    lifespan itself, so the token is written beforehand, straight into the migrated
    database."""
    folder = tmp_path_factory.mktemp("fuzz")
    with migrated_database(request.param, folder, "edgeprune_fuzz") as url:
        app_settings = make_settings(
            folder,
            database_url=url,
            inspect_wait_s=0.0,
            unauthenticated_rate_limit_per_minute=1_000_000,
        )
        engine = make_engine(url)
        try:
            with make_session_factory(engine)() as session:
                _, secret = create_token(session, "fuzz", kind="admin")
                session.commit()
        finally:
            engine.dispose()
        yield create_app(app_settings), secret


def _runner(
    operation: Any, mode: Any, headers: dict[str, str], found: list[str]
) -> Callable[[], None]:
    @settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first example is enough
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if case.path == "/v1/jobs/events":
            # The live feed never ends by design; a client reading whole bodies must ask for
            # the replay-only form. Every other parameter stays fuzzed.
            case.query = {**(case.query or {}), "follow": "false"}
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except BaseException as exc:  # schemathesis raises an ExceptionGroup of failures
            for failure in getattr(exc, "exceptions", [exc]):
                title = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
                found.append(
                    f"{operation.label} [{mode.value}] {type(failure).__name__}: {title} "
                    f"-> {response.status_code} {response.text[:200]!r}"
                )

    return run


@pytest.mark.slow
def test_fuzzing_the_openapi_schema_finds_no_errors(fuzzed_app: tuple[FastAPI, str]) -> None:
    app, secret = fuzzed_app
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {secret}"}
    found: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 30, "the schema lost operations"
    for operation in operations:
        for mode in EXAMPLES:
            try:
                _runner(operation, mode, headers, found)()
            except Unsatisfiable:
                # Nothing can be invalid about an operation without inputs (GET /healthz).
                assert mode == schemathesis.GenerationMode.NEGATIVE, operation.label
    assert found == [], "\n".join(dict.fromkeys(found))
    # The app still serves after all of it (its lifespan is the one schemathesis started).
    client = TestClient(app)
    assert client.get("/v1/jobs", headers=headers).status_code == 200
