"""Helpers of the API tests: the app handle and rows a worker would have written.

Where a test needs the state a worker produces (a model inspected `ready`, a job that
succeeded with artifacts), it is written with the persistence layer's own functions, in the
test, never through the API.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from infra.settings import Settings
from infra.storage import ArtifactStore
from infra.store import deployments as deployment_store
from infra.store import job_events, uploads
from infra.store import jobs as job_store
from infra.store.models import Job
from infra.store.tokens import create_token
from service.api.main import create_app
from tests.conftest import create_pg_database, drop_pg_database
from tests.support.databases import migrated_sqlite_url


class Backend(Protocol):
    """What seeding needs: the app's session factory and artifact store."""

    @property
    def sessions(self) -> sessionmaker[Session]: ...

    @property
    def storage(self) -> ArtifactStore: ...


@dataclass
class Api:
    client: TestClient
    admin: dict[str, str]
    settings: Settings

    @property
    def sessions(self) -> sessionmaker[Session]:
        factory: sessionmaker[Session] = self.client.app.state.sessions  # type: ignore[attr-defined]
        return factory

    @property
    def storage(self) -> ArtifactStore:
        store: ArtifactStore = self.client.app.state.storage  # type: ignore[attr-defined]
        return store

    def token(self, kind: str = "admin", device_id: str | None = None) -> dict[str, str]:
        with self.sessions() as session:
            _, secret = create_token(session, f"test {kind}", kind=kind, device_id=device_id)
            session.commit()
        return {"Authorization": f"Bearer {secret}"}


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    database = overrides.pop("database_url", None) or migrated_sqlite_url(tmp_path / "api.db")
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "database_url": database,
        "broker_url": f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        "artifacts_url": str(tmp_path / "artifacts"),
        # Nothing in these tests runs a worker: don't wait for one.
        "inspect_wait_s": 0.3,
        # The reconciler is the persistence side's; keep it out of these tests' way.
        "reconcile_interval_s": 3600.0,
        # Hundreds of apps start in one test process: the collection before the heap freeze
        # would walk the whole process each time (tests/api/test_api_health.py keeps it on).
        "api_freeze_heap": False,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def running_api(
    tmp_path: Path, database: str = "sqlite", prefix: str = "edgeprune_api"
) -> Iterator[Api]:
    """The app with an admin token, on SQLite or on a fresh PostgreSQL database (named from
    `prefix`, dropped afterwards)."""
    url = create_pg_database(prefix) if database == "postgresql" else None
    try:
        settings = make_settings(tmp_path, **({"database_url": url} if url else {}))
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            api = Api(client=client, admin={}, settings=settings)
            api.admin = api.token()
            yield api
    finally:
        if url:
            drop_pg_database(url)


# --- rows a worker would have written ----------------------------------------------------


def seed_model(
    api: Backend,
    *,
    status: str = "ready",
    error: str | None = None,
    input_shape: Sequence[int] = (1, 8, 8),
) -> str:
    """A model upload, left `pending` or answered `ready`/`invalid` as the inspect worker
    would answer it."""
    sha, size = api.storage.put_bytes(b"PK\x03\x04 not really a checkpoint")
    with api.sessions.begin() as session:
        model = uploads.add_model(
            session, name="m", arch="vgg11", num_classes=10, input_shape=input_shape,
            filename="m.pt", format="pt", sha256=sha, size=size,
        )  # fmt: skip
        if status == uploads.READY:
            uploads.mark_model_ready(session, model.id, params=1000, flops=5000)
        elif status == uploads.INVALID:
            uploads.mark_model_invalid(session, model.id, error or "does not load")
        return model.id


def seed_dataset(api: Backend, *, input_shape: Sequence[int] = (1, 8, 8)) -> str:
    with api.sessions.begin() as session:
        return uploads.add_dataset(
            session, name="d", filename="d.npz", format="npz", sha256="0" * 64, size=10,
            samples=20, classes=["0", "1"], input_shape=input_shape,
        ).id  # fmt: skip


def job_body(model_id: str, dataset_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model_id": model_id,
        "dataset_id": dataset_id,
        "target": {"metric": "flops", "reduction": 0.5},
        "structure_epochs": 1,
        "finetune_epochs": 1,
    }
    body.update(overrides)
    return body


def submit_job(api: Api, **overrides: Any) -> dict[str, Any]:
    body = job_body(seed_model(api), seed_dataset(api), **overrides)
    response = api.client.post("/v1/jobs", json=body, headers=api.admin)
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def finish_job(
    api: Backend,
    job_id: str,
    *,
    onnx: bytes = b"onnx-bytes" * 100,
    int8: bytes | None = None,
    summary: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Run the job's lifecycle the way the worker does, with the store's own transitions, and
    publish artifacts into the real storage. Returns artifact name -> sha256."""
    published = {
        "model.onnx": (onnx, "application/octet-stream"),
        "baseline.onnx": (b"baseline" * 200, "application/octet-stream"),
        "report.json": (b'{"achieved": {"flops": 0.5}}', "application/json"),
    }
    if int8 is not None:
        published["model.int8.onnx"] = (int8, "application/octet-stream")
    digests: dict[str, str] = {}
    with api.sessions() as session:
        claim = job_store.mark_running(session, job_id, "test-worker")
        assert claim.lease is not None
        job_events.append_event(session, job_id, "progress", {"phase": "calibrating"})
        for name, (data, content_type) in published.items():
            sha, size = api.storage.put_stream(io.BytesIO(data))
            job_store.record_artifact(
                session, job_id, name, sha256=sha, size=size, content_type=content_type
            )
            digests[name] = sha
        job_store.mark_succeeded(
            session,
            job_id,
            claim.lease,
            {"flops_after": 2500, "params_after": 600, **(summary or {})},
        )
        session.commit()
    return digests


def promote(api: Backend, name: str, job_id: str) -> None:
    with api.sessions() as session:
        deployment_store.promote(session, name, job_id)
        session.commit()


def job_state(api: Backend, job_id: str) -> str:
    with api.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.state


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def read_sse(api: Api, path: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Parse the whole stream into events ({id, event, data}); comments (pings) skipped."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with api.client.stream("GET", path, headers={**api.admin, **(headers or {})}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    events.append(current)
                    current = {}
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            current[field] = json.loads(value) if field == "data" else value
    if current:
        events.append(current)
    return events
