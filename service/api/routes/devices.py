"""`/v1/devices`: edge devices, their tokens and their benchmark reports (issues 4 and 15).

An admin registers a device for a deployment and receives the device's own token, once;
revokes it (its token stops working at once) or deletes it with its reports.
That token can read only its deployment's manifest and artifacts and post only its own
reports (see service/api/access.py); everything else answers 403.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from infra.settings import Settings
from infra.store import devices as device_store
from infra.store.models import DeploymentVersion, Device, DeviceReport, JobArtifact
from service.api import access, crud, fleet
from service.api.auth_first import AuthFirstRoute
from service.api.deps import (
    AdminToken,
    CurrentToken,
    SessionDep,
    SettingsDep,
    admin_token,
    current_token,
)
from service.api.errors import DeviceNameTaken, DeviceNotFound, InvalidReference
from service.api.json_body import require_json
from service.api.schemas.common import MAX_DB_INT
from service.api.schemas.devices import (
    DeviceCreate,
    DeviceCreated,
    DevicePublic,
    DeviceReportCreate,
    DeviceReportPublic,
    DeviceReportsPublic,
    DevicesPublic,
)

router = APIRouter(tags=["devices"], route_class=AuthFirstRoute)


def _stale_after(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.device_stale_after_s)


def _one(session: Session, device: Device, settings: Settings) -> DevicePublic:
    return fleet.public_devices(session, [device], _stale_after(settings))[0]


def _list(
    session: Session,
    settings: Settings,
    deployment: str | None,
    limit: int,
    offset: int,
    include_revoked: bool,
) -> DevicesPublic:
    rows, count = crud.list_devices(
        session, deployment=deployment, limit=limit, offset=offset, include_revoked=include_revoked
    )
    return DevicesPublic(
        data=fleet.public_devices(session, rows, _stale_after(settings)), count=count
    )


IncludeRevoked = Annotated[
    bool, Query(description="Also list revoked devices (hidden by default).")
]


@router.post(
    "/v1/devices",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceCreated,
    dependencies=[Depends(admin_token), Depends(require_json)],
    responses={
        409: {"description": "A live device has this name (register with force to replace it)."}
    },
)
def register_device(
    body: DeviceCreate, session: SessionDep, settings: SettingsDep, _token: AdminToken
) -> DeviceCreated:
    """Register a device for a deployment; the response holds its token (shown only now).

    The deployment must exist, or a queued or running job must be about to publish to it
    (422 otherwise). A name that a live device carries is refused (409) unless `force`,
    which revokes that device and its token.
    """
    try:
        registered = device_store.register(session, body.name, body.deployment, force=body.force)
        session.commit()
    except device_store.UnknownDeployment as exc:
        raise InvalidReference(str(exc), loc=["body", "deployment"]) from None
    except device_store.NameTaken as exc:
        raise DeviceNameTaken(str(exc)) from None
    except IntegrityError:
        # A concurrent registration of the same name won the unique index.
        session.rollback()
        raise DeviceNameTaken(
            f"a live device named {body.name!r} was registered at the same time; "
            "register with force to replace it"
        ) from None
    public = _one(session, registered.device, settings)
    return DeviceCreated(
        **public.model_dump(), token=registered.secret, replaced=registered.replaced
    )


@router.get("/v1/devices", response_model=DevicesPublic)
def list_devices(
    session: SessionDep,
    settings: SettingsDep,
    _token: AdminToken,
    deployment: str | None = None,
    include_revoked: IncludeRevoked = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
) -> DevicesPublic:
    """Devices with status, last seen time, current and assigned version, latest report."""
    return _list(session, settings, deployment, limit, offset, include_revoked)


@router.get("/v1/devices/{device_id}", response_model=DevicePublic)
def get_device(
    device_id: str, session: SessionDep, settings: SettingsDep, _token: AdminToken
) -> DevicePublic:
    return _one(session, crud.get_device(session, device_id), settings)


@router.post("/v1/devices/{device_id}/revoke", response_model=DevicePublic)
def revoke_device(
    device_id: str, session: SessionDep, settings: SettingsDep, _token: AdminToken
) -> DevicePublic:
    """Revoke the device's token: its next poll is refused (401). Idempotent. The device
    and its reports stay listed (with `include_revoked`) until deleted."""
    try:
        device = device_store.revoke(session, device_id)
    except device_store.DeviceNotFound as exc:
        raise DeviceNotFound(str(exc)) from None
    session.commit()
    return _one(session, device, settings)


@router.delete("/v1/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_device(device_id: str, session: SessionDep, _token: AdminToken) -> Response:
    """Forget the device and its reports; its token is revoked first."""
    try:
        device_store.delete_device(session, device_id)
    except device_store.DeviceNotFound as exc:
        raise DeviceNotFound(str(exc)) from None
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/devices/{device_id}/reports", response_model=DeviceReportsPublic)
def list_reports(
    device_id: str,
    session: SessionDep,
    _token: AdminToken,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
) -> DeviceReportsPublic:
    """The device's reports, newest first."""
    crud.get_device(session, device_id)
    rows, count = crud.list_device_reports(session, device_id, limit=limit, offset=offset)
    return DeviceReportsPublic(
        data=[DeviceReportPublic.model_validate(r) for r in rows], count=count
    )


@router.get("/v1/deployments/{name}/devices", response_model=DevicesPublic)
def deployment_devices(
    name: str,
    session: SessionDep,
    settings: SettingsDep,
    _token: AdminToken,
    include_revoked: IncludeRevoked = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
) -> DevicesPublic:
    return _list(session, settings, name, limit, offset, include_revoked)


def _report_version(session: Session, device: Device, body: DeviceReportCreate) -> int | None:
    """The deployment version the report is about: the one it names, checked against the
    deployment's history and the artifacts that version published; else the newest version
    that published the reported sha256. Ties each benchmark to the version that ran."""
    if body.sha256 is None:
        if body.version is not None and (
            session.get(DeploymentVersion, (device.deployment, body.version)) is None
        ):
            raise InvalidReference(
                f"deployment {device.deployment!r} has no version {body.version}",
                loc=["body", "version"],
            )
        return body.version
    published = select(DeploymentVersion.version).join(
        JobArtifact, JobArtifact.job_id == DeploymentVersion.job_id
    )
    published = published.where(
        DeploymentVersion.deployment == device.deployment, JobArtifact.sha256 == body.sha256
    )
    versions = set(session.scalars(published))
    if body.version is not None:
        if body.version not in versions:
            raise InvalidReference(
                f"version {body.version} of deployment {device.deployment!r} published no "
                f"artifact {body.sha256}",
                loc=["body", "version"],
            )
        return body.version
    if not versions:
        raise InvalidReference(
            f"no version of deployment {device.deployment!r} published {body.sha256}",
            loc=["body", "sha256"],
        )
    return max(versions)


@router.post(
    "/v1/devices/{device_id}/reports",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceReportPublic,
    dependencies=[Depends(current_token), Depends(require_json)],
)
def post_report(
    device_id: str, body: DeviceReportCreate, session: SessionDep, token: CurrentToken
) -> DeviceReport:
    """A device's benchmark of the version it runs (status ok), or a failed install (status
    install_failed, with the stage: checksum, load or inference). Also records last-seen."""
    access.require_device(session, token, device_id)
    device = crud.get_device(session, device_id)
    version = _report_version(session, device, body)
    data = body.model_dump(mode="json", exclude_none=True)
    if version is not None:
        data["version"] = version
    report = device_store.record_report(
        session, device, status=body.status, version=version, data=data
    )
    session.commit()
    return report
