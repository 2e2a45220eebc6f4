"""Rows the store tests need: a job with its model and dataset."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from infra.store.models import Dataset, Job, Model


def add_job(sessions: sessionmaker[Session], **job_fields: object) -> str:
    """A job (with its model and dataset rows) in state queued unless told otherwise."""
    with sessions.begin() as session:
        model = Model(
            name="m",
            arch="vgg11",
            num_classes=10,
            input_shape=[1, 32, 32],
            filename="m.pt",
            format="pt",
            sha256="a" * 64,
            size=1,
        )
        dataset = Dataset(
            name="d", filename="d.npz", format="npz", sha256="b" * 64, size=1, samples=10,
            classes=["0", "1"], input_shape=[1, 8, 8],
        )  # fmt: skip
        session.add_all([model, dataset])
        session.flush()
        config = {"target": {"metric": "flops", "reduction": 0.5}}
        job = Job(model_id=model.id, dataset_id=dataset.id, config=config, **job_fields)
        session.add(job)
        session.flush()
        return job.id
