"""`/v1/datasets`: edge-task data uploads and listings.

Unlike checkpoints, datasets are inspected right here (numpy for `.npz`, a member scan and
one image header for ImageFolder archives): cheap, torch-free, and the answer is immediate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session, sessionmaker

from infra.storage import ArtifactStore
from infra.store import uploads
from infra.store.models import Dataset
from service.api import crud
from service.api.deps import AdminToken, SessionDep, SessionFactoryDep, SettingsDep, StorageDep
from service.api.forms import DatasetUploadFields, parse_fields
from service.api.schemas.common import MAX_DB_INT
from service.api.schemas.datasets import DatasetPublic, DatasetsPublic
from service.api.session_route import SessionReleasingRoute
from service.api.uploads import ReceivedFile, receive_multipart
from service.api.validation.datasets import (
    DatasetInfo,
    DatasetLimits,
    dataset_format,
    inspect_dataset,
)

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], route_class=SessionReleasingRoute)


def _inspect_and_store(
    storage: ArtifactStore, received: ReceivedFile, limits: DatasetLimits
) -> DatasetInfo:
    info = inspect_dataset(received.path, dataset_format(received.filename), limits)
    sha256, size = storage.put_file(received.path)
    if sha256 != received.sha256 or size != received.size:
        raise RuntimeError("stored dataset differs from the received bytes")
    return info


def _insert_dataset(
    factory: sessionmaker[Session], name: str, received: ReceivedFile, info: DatasetInfo
) -> Dataset:
    with factory.begin() as session:
        return uploads.add_dataset(
            session,
            name=name,
            filename=received.filename,
            format=info.format,
            sha256=received.sha256,
            size=received.size,
            samples=info.samples,
            classes=info.classes,
            input_shape=info.input_shape,
        )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetPublic,
    responses={
        413: {"description": "File larger than max_upload_bytes."},
        415: {"description": "Not multipart/form-data."},
        422: {"description": "Unsupported or malformed dataset."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "name": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def upload_dataset(
    request: Request,
    response: Response,
    _token: AdminToken,
    settings: SettingsDep,
    storage: StorageDep,
    factory: SessionFactoryDep,
) -> Dataset:
    """Upload a `.npz` (x, y[, x_test, y_test]) or a `.zip`/`.tar.gz` ImageFolder tree."""
    async with receive_multipart(
        request,
        file_field="file",
        max_file_bytes=settings.max_upload_bytes,
        tmp_dir=settings.data_dir / "tmp",
    ) as form:
        fields = parse_fields(DatasetUploadFields, form.fields)
        assert form.file is not None  # receive_multipart guarantees a file
        received = form.file
        limits = DatasetLimits(settings.max_dataset_files, settings.max_dataset_bytes)
        info = await anyio.to_thread.run_sync(_inspect_and_store, storage, received, limits)
    name = fields.name or Path(received.filename).name.split(".")[0]
    dataset = await anyio.to_thread.run_sync(_insert_dataset, factory, name, received, info)
    response.headers["Location"] = f"/v1/datasets/{dataset.id}"
    return dataset


@router.get("", response_model=DatasetsPublic)
def list_datasets(
    session: SessionDep,
    _token: AdminToken,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
) -> DatasetsPublic:
    rows, count = crud.list_datasets(session, limit=limit, offset=offset)
    return DatasetsPublic(data=[DatasetPublic.model_validate(r) for r in rows], count=count)


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: str, session: SessionDep, _token: AdminToken) -> Dataset:
    return crud.get_dataset(session, dataset_id)
