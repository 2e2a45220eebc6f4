"""`/v1/deployments`: named pointers at a succeeded job's model, with history, staged
rollouts (promote to a percentage, widen, rollback) and the manifest devices poll.

The manifest is the fleet's hottest route: one indexed query (plus the token lookup), a
strong ETag `"<version>-<sha256[:16]>"`, and 304 when the device already has it. During a
staged rollout each device is answered with the version its stage assigns it (a hash of its
id; infra/store/deployments.py), so the ETag differs between the two groups.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from sqlalchemy.orm import Session

from edgeprune.contracts.artifacts import MODEL_ONNX
from infra.store import deployments as deployment_store
from infra.store import jobs as job_store
from infra.store.models import Deployment
from service.api import access, crud, fleet, manifest_body
from service.api.auth_first import AuthFirstRoute
from service.api.deps import (
    AdminToken,
    CurrentToken,
    MetricsDep,
    SessionDep,
    SettingsDep,
    admin_token,
)
from service.api.errors import (
    Conflict,
    DeploymentNotFound,
    InvalidInput,
    InvalidReference,
    JobNotFound,
    JobNotSucceeded,
    NothingToRollBack,
)
from service.api.json_body import require_json, require_json_if_body
from service.api.schemas.common import DEPLOYMENT_NAME_PATTERN, MAX_DB_INT
from service.api.schemas.deployments import (
    DeploymentPromote,
    DeploymentPublic,
    DeploymentRollback,
    DeploymentsPublic,
    DeploymentVersionPublic,
    DeploymentWiden,
    Manifest,
)
from service.api.schemas.fleet import FleetSummary

router = APIRouter(prefix="/v1/deployments", tags=["deployments"], route_class=AuthFirstRoute)
NewName = Annotated[str, Path(pattern=DEPLOYMENT_NAME_PATTERN, max_length=100)]


def _public(session: Session, deployment: Deployment) -> DeploymentPublic:
    history = deployment_store.history(session, deployment.name)
    current = next((v for v in history if v.version == deployment.current_version), None)
    return DeploymentPublic(
        name=deployment.name,
        current_version=deployment.current_version,
        current_job_id=current.job_id if current else None,
        rollout=fleet.rollout_public(session, deployment),
        created_at=deployment.created_at,
        updated_at=deployment.updated_at,
        history=[DeploymentVersionPublic.model_validate(v) for v in history],
    )


@router.put(
    "/{name}",
    response_model=DeploymentPublic,
    dependencies=[Depends(admin_token), Depends(require_json)],
    responses={
        201: {"model": DeploymentPublic, "description": "Deployment created."},
        409: {
            "description": "The job has not succeeded (or published no model), or a staged "
            "promotion of a deployment that has no version yet."
        },
    },
)
def promote(
    name: NewName,
    body: DeploymentPromote,
    response: Response,
    session: SessionDep,
    _token: AdminToken,
) -> DeploymentPublic:
    """Point the deployment at a succeeded job's model as a new version (history kept).

    With `percent` < 100 the version is staged: only that share of the devices (stable by a
    hash of the device id) gets it; `widen` gives it to more, `rollback` ends the stage.
    """
    try:
        job = crud.get_job(session, body.job_id)
    except JobNotFound as exc:
        raise InvalidReference(exc.detail, loc=["body", "job_id"]) from None
    if job.state != job_store.SUCCEEDED:
        raise JobNotSucceeded(f"job {job.id} is {job.state}; only succeeded jobs can be promoted")
    if crud.get_job_artifact(session, job.id, MODEL_ONNX) is None:
        raise JobNotSucceeded(f"job {job.id} published no {MODEL_ONNX}")
    created = session.get(Deployment, name) is None
    try:
        deployment_store.promote(session, name, job.id, body.percent)
    except deployment_store.NoStableVersion as exc:
        raise Conflict(str(exc)) from None
    session.commit()
    if created:
        response.status_code = status.HTTP_201_CREATED
    response.headers["Location"] = f"/v1/deployments/{name}"
    return _public(session, crud.get_deployment(session, name))


@router.get("", response_model=DeploymentsPublic)
def list_deployments(
    session: SessionDep,
    _token: AdminToken,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
) -> DeploymentsPublic:
    rows, count = crud.list_deployments(session, limit=limit, offset=offset)
    return DeploymentsPublic(data=[_public(session, d) for d in rows], count=count)


@router.get("/{name}", response_model=DeploymentPublic)
def get_deployment(name: str, session: SessionDep, _token: AdminToken) -> DeploymentPublic:
    """The deployment with its history, newest version first."""
    return _public(session, crud.get_deployment(session, name))


@router.post(
    "/{name}/rollback",
    response_model=DeploymentPublic,
    dependencies=[Depends(admin_token), Depends(require_json_if_body)],
    responses={409: {"description": "No earlier version."}},
)
def rollback(
    name: str,
    session: SessionDep,
    _token: AdminToken,
    body: DeploymentRollback | None = None,
) -> DeploymentPublic:
    """Re-point the deployment at an earlier version (default: the one before the current).

    During a staged rollout the default ends the stage instead: every device returns to the
    current version. Naming a version also ends the stage.
    """
    deployment = crud.get_deployment(session, name)
    version = body.version if body else None
    try:
        deployment_store.rollback(session, name, version)
    except deployment_store.VersionNotFound:
        if version is None:
            raise NothingToRollBack(
                f"deployment {name!r} has no version before the current one"
            ) from None
        raise InvalidReference(
            f"deployment {name!r} has no version {version}", loc=["body", "version"]
        ) from None
    session.commit()
    session.refresh(deployment)
    return _public(session, deployment)


@router.post(
    "/{name}/widen",
    response_model=DeploymentPublic,
    dependencies=[Depends(admin_token), Depends(require_json_if_body)],
    responses={409: {"description": "No staged rollout in progress."}},
)
def widen(
    name: str,
    session: SessionDep,
    _token: AdminToken,
    body: DeploymentWiden | None = None,
) -> DeploymentPublic:
    """Give the staged version to more devices; at 100% (the default) it becomes the current
    version of every device and the stage ends."""
    deployment = crud.get_deployment(session, name)
    percent = body.percent if body else 100
    try:
        deployment_store.widen(session, name, percent)
    except deployment_store.NoRolloutInProgress as exc:
        raise Conflict(str(exc)) from None
    except deployment_store.PercentBelowStage as exc:
        raise InvalidInput(str(exc), loc=["body", "percent"]) from None
    session.commit()
    session.refresh(deployment)
    return _public(session, deployment)


@router.get("/{name}/fleet", response_model=FleetSummary)
def fleet_summary(
    name: str, session: SessionDep, settings: SettingsDep, _token: AdminToken
) -> FleetSummary:
    """Which devices run what: devices per version (assigned by the stage, running, online,
    stale), median on-device speedup and latency per version, and failed installs."""
    deployment = crud.get_deployment(session, name)
    return fleet.summary(session, deployment, timedelta(seconds=settings.device_stale_after_s))


@router.get(
    "/{name}/manifest",
    response_model=Manifest,
    responses={304: {"description": "The device already has this version (If-None-Match)."}},
)
def manifest(
    name: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    token: CurrentToken,
) -> Response:
    """What a device needs to fetch, verify and run the deployment's current model."""
    device = access.require_deployment(session, token, name)
    bucket = crud.NO_DEVICE_BUCKET
    if device is not None:
        access.touch_device(session, device)
        bucket = deployment_store.rollout_bucket(device.id)
    row = crud.manifest_row(session, name, bucket)
    if row is None:
        crud.get_deployment(session, name)  # 404 for an unknown name
        raise DeploymentNotFound(f"deployment {name!r} has no published version yet")
    etag = manifest_body.etag_of(row)
    # no-cache: caches may store it but must revalidate, which is exactly the poll.
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if manifest_body.matches(request.headers.get("if-none-match"), etag):
        metrics.record_manifest(304)
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    rendered = manifest_body.render(row, base)
    metrics.record_manifest(200)
    return Response(rendered.body, media_type="application/json", headers=headers)
