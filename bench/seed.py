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

from service.storage import ArtifactStore
from service.store import deployments as deployment_store
from service.store import jobs as job_store
from service.store.db import make_engine, make_session_factory
from service.store.models import Dataset, Job, JobArtifact, Model
from service.store.tokens import create_token

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
        with self.sessions() as session:
            model = Model(
                name="bench",
                arch="resnet20",
                num_classes=len(CLASSES),
                input_shape=INPUT_SHAPE,
                filename="bench.pt",
                format="pt",
                sha256="1" * 64,
                size=1,
                status="ready",
            )
            dataset = Dataset(
                name="bench",
                filename="bench.npz",
                format="npz",
                sha256="2" * 64,
                size=1,
                samples=64,
                classes=CLASSES,
                input_shape=INPUT_SHAPE,
            )
            session.add_all([model, dataset])
            session.commit()
            return JobInputs(model.id, dataset.id)

    def publish(self, deployment: str, model: bytes, baseline: bytes) -> Published:
        """A succeeded job with model.onnx and baseline.onnx, promoted to `deployment`."""
        inputs = self.job_inputs()
        with self.sessions() as session:
            job = Job(model_id=inputs.model_id, dataset_id=inputs.dataset_id, config={})
            session.add(job)
            session.flush()
            claim = job_store.mark_running(session, job.id, "bench-seeder")
            shas = {}
            for name, data in (("model.onnx", model), ("baseline.onnx", baseline)):
                sha, size = self.storage.put_stream(io.BytesIO(data))
                shas[name] = (sha, size)
                session.add(
                    JobArtifact(
                        job_id=job.id,
                        name=name,
                        sha256=sha,
                        size=size,
                        content_type="application/octet-stream",
                    )
                )
            summary = {"flops_after": 1_000_000, "params_after": 10_000}
            if not job_store.mark_succeeded(session, job.id, claim.lease, summary):
                raise RuntimeError(f"could not mark seeded job {job.id} succeeded")
            version = deployment_store.promote(session, deployment, job.id).version
            session.commit()
        sha, size = shas["model.onnx"]
        return Published(deployment, version, job.id, sha, size, f'"{version}-{sha[:16]}"')
