"""Deployments: every promotion is a new numbered version; rollback re-points the current one.

Staged rollouts: a promotion may go to a percentage of the deployment's devices first. The
deployment then has a stable `current_version` (every other device) and a `rollout_version`
for the devices whose bucket (a hash of the device id, 0..99) is below `rollout_percent`.
The bucket depends only on the device id, so a device in a 10% stage stays in it when the
stage widens to 50%, and the same devices go first in every rollout (a natural canary
ring). `widen` to 100 makes the staged version the current one; `rollback` during a stage
ends it, and every device returns to the stable version.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from infra.store import poll_generation
from infra.store.models import Deployment, DeploymentVersion, utcnow


class DeploymentNotFound(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"deployment {name!r} not found")
        self.name = name


class NoStableVersion(Exception):
    """A staged promotion needs a version for the devices outside the stage."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"deployment {name!r} has no version yet: its first promotion goes to every device"
        )
        self.name = name


class NoRolloutInProgress(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(f"deployment {name!r} has no staged rollout in progress")
        self.name = name


class PercentBelowStage(ValueError):
    def __init__(self, name: str, current: int, asked: int) -> None:
        super().__init__(
            f"deployment {name!r} is staged at {current}%; widen to more than that "
            f"(asked {asked}%), or roll back"
        )
        self.current = current
        self.asked = asked


FULL = 100


def rollout_bucket(device_id: str) -> int:
    """0..99, fixed for a device id: which devices a staged percentage includes."""
    digest = hashlib.sha256(device_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % FULL


def assigned_version(deployment: Deployment, device_id: str | None) -> int | None:
    """The version the deployment's stage assigns to a device (None: an admin, who sees the
    stable version)."""
    staged = deployment.rollout_version is not None and deployment.rollout_percent is not None
    if staged and device_id is not None:
        assert deployment.rollout_percent is not None
        if rollout_bucket(device_id) < deployment.rollout_percent:
            return deployment.rollout_version
    return deployment.current_version


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
    # Every caller changes what polls answer: API processes drop their cached manifests.
    poll_generation.deployments_changed(session)
    return deployment


def promote(
    session: Session, deployment: str, job_id: str, percent: int = FULL
) -> DeploymentVersion:
    """Point `deployment` at `job_id`'s model as a new version; history is kept.

    `percent` < 100 stages it: only that share of the devices gets it (see the module
    docstring), the others keep the current version. A full promotion ends any stage.

    Idempotent: promoting the job that is current already returns the current version
    (a retried PUT, or the worker re-running the auto-promotion, adds nothing), and
    promoting the staged job again only changes the stage's percentage.
    """
    if not 1 <= percent <= FULL:
        raise ValueError(f"percent must be 1..100, got {percent}")
    dep = _lock(session, deployment)
    if percent < FULL and dep.current_version is None:
        raise NoStableVersion(deployment)
    if dep.rollout_version is not None:
        staged = session.get(DeploymentVersion, (deployment, dep.rollout_version))
        if staged is not None and staged.job_id == job_id:
            _stage(dep, staged.version if percent < FULL else None, percent)
            if percent == FULL:
                dep.current_version = staged.version
            session.flush()
            return staged
    if dep.current_version is not None:
        current = session.get(DeploymentVersion, (deployment, dep.current_version))
        if current is not None and current.job_id == job_id:
            if percent == FULL:
                _stage(dep, None, percent)  # the stable job again, to every device
                session.flush()
            return current
    last = session.scalar(
        select(func.max(DeploymentVersion.version)).where(
            DeploymentVersion.deployment == deployment
        )
    )
    version = DeploymentVersion(deployment=deployment, version=(last or 0) + 1, job_id=job_id)
    session.add(version)
    if percent == FULL:
        dep.current_version = version.version
        _stage(dep, None, percent)
    else:
        _stage(dep, version.version, percent)
    session.flush()
    return version


def promote_finished_job(
    session: Session, deployment: str, job_id: str, percent: int = FULL
) -> DeploymentVersion:
    """A job's automatic promotion on success (its `deployment` and `rollout_percent`):
    staged as asked, except a deployment's first version, which goes to every device since
    they have nothing else to run."""
    dep = session.get(Deployment, deployment)
    if dep is None or dep.current_version is None:
        percent = FULL
    return promote(session, deployment, job_id, percent)


def _stage(dep: Deployment, version: int | None, percent: int) -> None:
    dep.rollout_version = version
    dep.rollout_percent = percent if version is not None else None


def widen(session: Session, deployment: str, percent: int = FULL) -> DeploymentVersion:
    """Give the staged version to `percent` of the devices; at 100 it becomes the current
    version of every device and the stage ends."""
    if session.get(Deployment, deployment) is None:
        raise DeploymentNotFound(deployment)
    dep = _lock(session, deployment)
    if dep.rollout_version is None or dep.rollout_percent is None:
        raise NoRolloutInProgress(deployment)
    if not 1 <= percent <= FULL:
        raise ValueError(f"percent must be 1..100, got {percent}")
    if percent < dep.rollout_percent:
        raise PercentBelowStage(deployment, dep.rollout_percent, percent)
    staged = session.get(DeploymentVersion, (deployment, dep.rollout_version))
    assert staged is not None  # versions are never deleted
    if percent == FULL:
        dep.current_version = staged.version
        _stage(dep, None, percent)
    else:
        dep.rollout_percent = percent
    session.flush()
    return staged


def rollback(session: Session, deployment: str, version: int | None = None) -> DeploymentVersion:
    """Re-point `deployment` at `version` (default: the one before the current one).

    During a staged rollout the default is to end the stage: every device returns to the
    current (stable) version, which stays as it is. Rolling back to a named version also
    ends the stage.
    """
    if session.get(Deployment, deployment) is None:
        raise DeploymentNotFound(deployment)
    dep = _lock(session, deployment)
    if version is None and dep.rollout_version is not None and dep.current_version is not None:
        _stage(dep, None, FULL)
        session.flush()
        stable = session.get(DeploymentVersion, (deployment, dep.current_version))
        assert stable is not None
        return stable
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
    _stage(dep, None, FULL)
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
