"""Query-side helpers of the API: listings and lookups that raise our 404s.

This module only reads. Every write, the API's uploads included, is a function of
`infra/store/` (docs/store.md), shared with the worker and the reconciler.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, bindparam, case, func, select
from sqlalchemy.orm import Session, aliased

from edgeprune.contracts.artifacts import BASELINE_ONNX, INT8_ONNX, MODEL_ONNX
from infra.store.models import (
    Dataset,
    Deployment,
    DeploymentVersion,
    Device,
    DeviceReport,
    Job,
    JobArtifact,
    Model,
)
from service.api.errors import (
    DatasetNotFound,
    DeploymentNotFound,
    DeviceNotFound,
    JobNotFound,
    ModelNotFound,
)


def page(
    session: Session, stmt: Any, count_stmt: Any, *, limit: int, offset: int
) -> tuple[list[Any], int]:
    rows = list(session.scalars(stmt.limit(limit).offset(offset)))
    return rows, int(session.scalar(count_stmt) or 0)


def get_model(session: Session, model_id: str) -> Model:
    model = session.get(Model, model_id)
    if model is None:
        raise ModelNotFound(f"no model with id {model_id!r}")
    return model


def list_models(session: Session, *, limit: int, offset: int) -> tuple[list[Model], int]:
    return page(
        session,
        select(Model).order_by(Model.created_at.desc(), Model.id),
        select(func.count()).select_from(Model),
        limit=limit,
        offset=offset,
    )


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise DatasetNotFound(f"no dataset with id {dataset_id!r}")
    return dataset


def list_datasets(session: Session, *, limit: int, offset: int) -> tuple[list[Dataset], int]:
    return page(
        session,
        select(Dataset).order_by(Dataset.created_at.desc(), Dataset.id),
        select(func.count()).select_from(Dataset),
        limit=limit,
        offset=offset,
    )


def get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return job


def list_jobs(
    session: Session, *, state: str | None, limit: int, offset: int
) -> tuple[list[Job], int]:
    stmt = select(Job).order_by(Job.created_at.desc(), Job.id)
    count = select(func.count()).select_from(Job)
    if state is not None:
        stmt = stmt.where(Job.state == state)
        count = count.where(Job.state == state)
    return page(session, stmt, count, limit=limit, offset=offset)


def job_counts_by_state(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state))
    return {state: int(n) for state, n in rows}


def get_job_artifact(session: Session, job_id: str, name: str) -> JobArtifact | None:
    return session.get(JobArtifact, (job_id, name))


def list_job_artifacts(session: Session, job_id: str) -> Sequence[JobArtifact]:
    return session.scalars(
        select(JobArtifact).where(JobArtifact.job_id == job_id).order_by(JobArtifact.name)
    ).all()


def get_deployment(session: Session, name: str) -> Deployment:
    deployment = session.get(Deployment, name)
    if deployment is None:
        raise DeploymentNotFound(f"no deployment named {name!r}")
    return deployment


def list_deployments(session: Session, *, limit: int, offset: int) -> tuple[list[Deployment], int]:
    return page(
        session,
        select(Deployment).order_by(Deployment.name),
        select(func.count()).select_from(Deployment),
        limit=limit,
        offset=offset,
    )


def list_devices(
    session: Session,
    *,
    deployment: str | None,
    limit: int,
    offset: int,
    include_revoked: bool = False,
) -> tuple[list[Device], int]:
    stmt = select(Device).order_by(Device.created_at.desc(), Device.id)
    count = select(func.count()).select_from(Device)
    if deployment is not None:
        stmt = stmt.where(Device.deployment == deployment)
        count = count.where(Device.deployment == deployment)
    if not include_revoked:
        stmt = stmt.where(Device.revoked_at.is_(None))
        count = count.where(Device.revoked_at.is_(None))
    return page(session, stmt, count, limit=limit, offset=offset)


def get_device(session: Session, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise DeviceNotFound(f"no device with id {device_id!r}")
    return device


def list_device_reports(
    session: Session, device_id: str, *, limit: int, offset: int
) -> tuple[list[DeviceReport], int]:
    return page(
        session,
        select(DeviceReport)
        .where(DeviceReport.device_id == device_id)
        .order_by(DeviceReport.id.desc()),
        select(func.count()).select_from(DeviceReport).where(DeviceReport.device_id == device_id),
        limit=limit,
        offset=offset,
    )


@dataclass(frozen=True)
class ManifestRow:
    deployment: str
    version: int
    job_id: str
    summary: dict[str, Any] | None
    input_shape: list[int]
    classes: list[str]
    model_sha256: str
    model_size: int
    baseline_sha256: str | None
    int8_sha256: str | None = None
    int8_size: int | None = None


@functools.cache
def _manifest_query() -> Select[Any]:
    """Built once: constructing this select costs about 1 ms of Python per call, more than
    running it (measured with bench/service_throughput.py); the name is a bound parameter."""
    onnx = aliased(JobArtifact)
    baseline = aliased(JobArtifact)
    int8 = aliased(JobArtifact)
    # The staged version for a device whose bucket falls inside the stage's percentage, the
    # current version for everyone else (see infra.store.deployments).
    in_stage = Deployment.rollout_version.is_not(None) & (
        Deployment.rollout_percent > bindparam("bucket")
    )
    version = case((in_stage, Deployment.rollout_version), else_=Deployment.current_version)
    return (
        select(
            Deployment.name,
            DeploymentVersion.version,
            Job.id,
            Job.summary,
            Model.input_shape,
            Dataset.classes,
            onnx.sha256,
            onnx.size,
            baseline.sha256,
            int8.sha256,
            int8.size,
        )
        .join(
            DeploymentVersion,
            (DeploymentVersion.deployment == Deployment.name)
            & (DeploymentVersion.version == version),
        )
        .join(Job, Job.id == DeploymentVersion.job_id)
        .join(Model, Model.id == Job.model_id)
        .join(Dataset, Dataset.id == Job.dataset_id)
        .join(onnx, (onnx.job_id == Job.id) & (onnx.name == MODEL_ONNX))
        .outerjoin(baseline, (baseline.job_id == Job.id) & (baseline.name == BASELINE_ONNX))
        .outerjoin(int8, (int8.job_id == Job.id) & (int8.name == INT8_ONNX))
        .where(Deployment.name == bindparam("deployment_name"))
    )


# A bucket no stage includes (stages are 1..99%): what an admin token, not a device, is shown.
NO_DEVICE_BUCKET = 100


def manifest_row(session: Session, name: str, bucket: int = NO_DEVICE_BUCKET) -> ManifestRow | None:
    """The version of a deployment that a device in rollout `bucket` runs, with all its
    manifest needs, in one query.

    Key joins only (deployment → assigned version → job → model, dataset, artifacts): this
    is the fleet's hottest read. None when the deployment does not exist, has no version, or
    its job has no published model.onnx.
    """
    stmt = _manifest_query()
    row = session.execute(stmt, {"deployment_name": name, "bucket": bucket}).one_or_none()
    if row is None:
        return None
    return ManifestRow(
        deployment=row[0],
        version=row[1],
        job_id=row[2],
        summary=row[3],
        input_shape=[int(d) for d in row[4]],
        classes=[str(c) for c in row[5]],
        model_sha256=row[6],
        model_size=int(row[7]),
        baseline_sha256=row[8],
        int8_sha256=row[9],
        int8_size=int(row[10]) if row[10] is not None else None,
    )


def deployment_serves_artifact(session: Session, deployment: str, sha256: str) -> bool:
    """Whether any version of `deployment` published an artifact with this sha256.

    Any version, not only the current one: a device rolling back or resuming a download of
    the version it was told about must still be able to read it.
    """
    stmt = (
        select(JobArtifact.sha256)
        .join(DeploymentVersion, DeploymentVersion.job_id == JobArtifact.job_id)
        .where(DeploymentVersion.deployment == deployment, JobArtifact.sha256 == sha256)
        .limit(1)
    )
    return session.execute(stmt).first() is not None
