"""Rows the store tests need, written with the store's own functions: a job with its model
and dataset, brought to the state a test asks for by the transitions that lead there."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from infra.store import jobs, uploads


def add_inputs(session: Session) -> tuple[str, str]:
    """A `ready` model and a dataset; returns their ids."""
    model = uploads.add_model(
        session, name="m", arch="vgg11", num_classes=10, input_shape=[1, 32, 32],
        filename="m.pt", format="pt", sha256="a" * 64, size=1,
    )  # fmt: skip
    uploads.mark_model_ready(session, model.id, params=1000, flops=5000)
    dataset = uploads.add_dataset(
        session, name="d", filename="d.npz", format="npz", sha256="b" * 64, size=1,
        samples=10, classes=["0", "1"], input_shape=[1, 8, 8],
    )  # fmt: skip
    return model.id, dataset.id


def add_job(
    sessions: sessionmaker[Session],
    *,
    state: str = jobs.QUEUED,
    deployment: str | None = None,
    enqueued_at: datetime | None = None,
) -> str:
    """A job (with its model and dataset) in `state`, reached as the worker would reach it."""
    with sessions.begin() as session:
        model_id, dataset_id = add_inputs(session)
        config = {"target": {"metric": "flops", "reduction": 0.5}}
        job_id = jobs.create_job(
            session, model_id=model_id, dataset_id=dataset_id, config=config, deployment=deployment
        ).id
        if enqueued_at is not None:
            jobs.mark_enqueued(session, job_id, enqueued_at)
        if state == jobs.CANCELED:
            jobs.request_cancel(session, job_id)
        elif state != jobs.QUEUED:
            lease = jobs.mark_running(session, job_id, "test-worker").lease
            if state == jobs.SUCCEEDED:
                jobs.mark_succeeded(session, job_id, lease, {})
            elif state == jobs.FAILED:
                jobs.mark_failed(session, job_id, lease, "TestError", "failed on purpose")
        assert jobs.get_job(session, job_id).state == state
        return job_id
