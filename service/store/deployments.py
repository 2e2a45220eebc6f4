"""Deployments: every promotion is a new numbered version; rollback re-points the current one."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.store.models import Deployment, DeploymentVersion, utcnow


class DeploymentNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"deployment {name!r} not found")
        self.name = name


class VersionNotFound(LookupError):
    def __init__(self, name: str, version: int | None) -> None:
        what = "no earlier version" if version is None else f"no version {version}"
        super().__init__(f"deployment {name!r} has {what}")
        self.name = name
        self.version = version


def _lock(session: Session, name: str) -> Deployment:
    """Create the deployment if needed, then hold its row (PostgreSQL) / the DB (SQLite) lock.

    The no-op UPDATE is the lock: concurrent promotions of one deployment queue behind it, so
    `max(version) + 1` cannot be handed out twice.
    """
    if session.get(Deployment, name) is None:
        try:
            with session.begin_nested():
                session.add(Deployment(name=name))
        except IntegrityError:
            pass  # another transaction created it first; fine
    session.execute(
        update(Deployment)
        .where(Deployment.name == name)
        .values(updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    deployment = session.get(Deployment, name, populate_existing=True)
    assert deployment is not None  # created above, and deployments are never deleted
    return deployment


def promote(session: Session, deployment: str, job_id: str) -> DeploymentVersion:
    """Point `deployment` at `job_id`'s model as a new version; history is kept.

    Idempotent: promoting the job that is current already returns the current version
    (a retried PUT, or the worker re-running the auto-promotion, adds nothing).
    """
    dep = _lock(session, deployment)
    if dep.current_version is not None:
        current = session.get(DeploymentVersion, (deployment, dep.current_version))
        if current is not None and current.job_id == job_id:
            return current
    last = session.scalar(
        select(func.max(DeploymentVersion.version)).where(
            DeploymentVersion.deployment == deployment
        )
    )
    version = DeploymentVersion(deployment=deployment, version=(last or 0) + 1, job_id=job_id)
    session.add(version)
    dep.current_version = version.version
    session.flush()
    return version


def rollback(session: Session, deployment: str, version: int | None = None) -> DeploymentVersion:
    """Re-point `deployment` at `version` (default: the one before the current one)."""
    if session.get(Deployment, deployment) is None:
        raise DeploymentNotFound(deployment)
    dep = _lock(session, deployment)
    if version is None:
        target = session.scalar(
            select(DeploymentVersion)
            .where(
                DeploymentVersion.deployment == deployment,
                DeploymentVersion.version < (dep.current_version or 0),
            )
            .order_by(DeploymentVersion.version.desc())
            .limit(1)
        )
    else:
        target = session.get(DeploymentVersion, (deployment, version))
    if target is None:
        raise VersionNotFound(deployment, version)
    dep.current_version = target.version
    session.flush()
    return target


def current(session: Session, deployment: str) -> DeploymentVersion | None:
    dep = session.get(Deployment, deployment)
    if dep is None or dep.current_version is None:
        return None
    return session.get(DeploymentVersion, (deployment, dep.current_version))


def history(session: Session, deployment: str) -> list[DeploymentVersion]:
    """Every version, newest first."""
    stmt = (
        select(DeploymentVersion)
        .where(DeploymentVersion.deployment == deployment)
        .order_by(DeploymentVersion.version.desc())
    )
    return list(session.scalars(stmt))
