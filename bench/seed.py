"""Seed a running service's store the way a worker would: through the store's own functions.

A succeeded job with published artifacts promoted to a deployment (what devices poll), a
`ready` model and a dataset row (what job submissions validate against), and an admin token.
Shared by `bench.service_throughput` and the load tests.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from infra.storage import ArtifactStore
from infra.store import deployments as deployment_store
from infra.store import jobs as job_store
from infra.store import uploads
from infra.store.db import make_engine, make_session_factory
from infra.store.tokens import create_token

CLASSES = ["cat", "dog", "bird"]
INPUT_SHAPE = [3, 32, 32]


@dataclass(frozen=True)
class Published:
    """A deployment's current version as a device should see it."""

    deployment: str
    version: int
    job_id: str
    model_sha256: str
    model_size: int
    etag: str


@dataclass(frozen=True)
class JobInputs:
    model_id: str
    dataset_id: str


def add_job_inputs(
    sessions: sessionmaker[Session],
    *,
    classes: list[str] = CLASSES,
    input_shape: list[int] = INPUT_SHAPE,
    arch: str = "resnet20",
) -> JobInputs:
    """A `ready` model and a dataset row: enough for POST /v1/jobs to validate."""
    with sessions.begin() as session:
        model = uploads.add_model(
            session,
            name="seeded",
            arch=arch,
            num_classes=len(classes),
            input_shape=input_shape,
            filename="seeded.pt",
            format="pt",
            sha256="1" * 64,
            size=1,
        )
        # Stand-in counts: no worker inspects this stand-in checkpoint.
        uploads.mark_model_ready(session, model.id, params=1, flops=1)
        dataset = uploads.add_dataset(
            session,
            name="seeded",
            filename="seeded.npz",
            format="npz",
            sha256="2" * 64,
            size=1,
            samples=64,
            classes=classes,
            input_shape=input_shape,
        )
        return JobInputs(model.id, dataset.id)


@dataclass(frozen=True)
class SeededJob:
    job_id: str
    model_sha256: str
    model_size: int


def add_succeeded_job(
    sessions: sessionmaker[Session],
    storage: ArtifactStore,
    inputs: JobInputs,
    model: bytes,
    baseline: bytes,
) -> SeededJob:
    """A succeeded job with model.onnx and baseline.onnx, written as the worker would."""
    with sessions() as session:
        job = job_store.create_job(
            session, model_id=inputs.model_id, dataset_id=inputs.dataset_id, config={}
        )
        claim = job_store.mark_running(session, job.id, "seeder")
        stored = {}
        for name, data in (("model.onnx", model), ("baseline.onnx", baseline)):
            sha, size = storage.put_stream(io.BytesIO(data))
            stored[name] = (sha, size)
            job_store.record_artifact(
                session,
                job.id,
                name,
                sha256=sha,
                size=size,
                content_type="application/octet-stream",
            )
        summary = {"flops_after": 1_000_000, "params_after": 10_000}
        if not job_store.mark_succeeded(session, job.id, claim.lease, summary):
            raise RuntimeError(f"could not mark seeded job {job.id} succeeded")
        session.commit()
    sha, size = stored["model.onnx"]
    return SeededJob(job.id, sha, size)


class Seeder:
    """Writes to the database and artifact store a running API serves from."""

    def __init__(self, database_url: str, artifacts_url: str) -> None:
        self.engine: Engine = make_engine(database_url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.storage = ArtifactStore(artifacts_url)

    def close(self) -> None:
        self.engine.dispose()

    def admin_token(self, name: str = "bench admin") -> str:
        with self.sessions() as session:
            _, secret = create_token(session, name, kind="admin")
            session.commit()
        return secret

    def job_inputs(self) -> JobInputs:
        """A `ready` model and a dataset row: enough for POST /v1/jobs to validate."""
        return add_job_inputs(self.sessions)

    def publish(self, deployment: str, model: bytes, baseline: bytes) -> Published:
        """A succeeded job with model.onnx and baseline.onnx, promoted to `deployment`."""
        job = add_succeeded_job(self.sessions, self.storage, self.job_inputs(), model, baseline)
        with self.sessions() as session:
            version = deployment_store.promote(session, deployment, job.job_id).version
            session.commit()
        etag = f'"{version}-{job.model_sha256[:16]}"'
        return Published(deployment, version, job.job_id, job.model_sha256, job.model_size, etag)
