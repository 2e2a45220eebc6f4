"""`/v1/devices`: edge devices, their tokens and their benchmark reports (issue 4).

An admin registers a device for a deployment and receives the device's own token, once.
That token can read only its deployment's manifest and artifacts and post only its own
reports (see service/api/access.py); everything else answers 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import update
from sqlalchemy.orm import Session

from service.api import access, crud
from service.api.auth_first import AuthFirstRoute
from service.api.deps import AdminToken, CurrentToken, SessionDep, admin_token, current_token
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
from service.store.models import Device, DeviceReport, utcnow
from service.store.tokens import create_token

router = APIRouter(tags=["devices"], route_class=AuthFirstRoute)


def _list(session: Session, deployment: str | None, limit: int, offset: int) -> DevicesPublic:
    rows, count = crud.list_devices(session, deployment=deployment, limit=limit, offset=offset)
    return DevicesPublic(data=[DevicePublic.model_validate(d) for d in rows], count=count)


@router.post(
    "/v1/devices",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceCreated,
    dependencies=[Depends(admin_token), Depends(require_json)],
)
def register_device(body: DeviceCreate, session: SessionDep, _token: AdminToken) -> DeviceCreated:
    """Register a device for a deployment; the response holds its token (shown only now)."""
    device = Device(name=body.name, deployment=body.deployment)
    session.add(device)
    session.flush()
    _, secret = create_token(session, f"device {body.name}", kind="device", device_id=device.id)
    session.commit()
    return DeviceCreated(**DevicePublic.model_validate(device).model_dump(), token=secret)


@router.get("/v1/devices", response_model=DevicesPublic)
def list_devices(
    session: SessionDep,
    _token: AdminToken,
    deployment: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
) -> DevicesPublic:
    """Devices with last seen time, current version and latest report."""
    return _list(session, deployment, limit, offset)


@router.get("/v1/devices/{device_id}", response_model=DevicePublic)
def get_device(device_id: str, session: SessionDep, _token: AdminToken) -> Device:
    return crud.get_device(session, device_id)


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
    _token: AdminToken,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
) -> DevicesPublic:
    return _list(session, name, limit, offset)


@router.post(
    "/v1/devices/{device_id}/reports",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceReportPublic,
    dependencies=[Depends(current_token), Depends(require_json)],
)
def post_report(
    device_id: str, body: DeviceReportCreate, session: SessionDep, token: CurrentToken
) -> DeviceReport:
    """A device's benchmark report; also records its current version and last-seen time."""
    access.require_device(session, token, device_id)
    crud.get_device(session, device_id)
    data = body.model_dump(mode="json", exclude_none=True)
    report = DeviceReport(device_id=device_id, version=body.version, data=data)
    session.add(report)
    values: dict[str, object] = {"last_seen_at": utcnow(), "last_report": data}
    if body.version is not None:
        values["current_version"] = body.version
    session.execute(
        update(Device)
        .where(Device.id == device_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return report
