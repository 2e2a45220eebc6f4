"""`/v1/models`: checkpoint uploads and listings.

The API cannot load a checkpoint (it never imports torch), so an upload is checked cheaply
(suffix, magic bytes, header), stored content-addressed, recorded as `pending`, and an
inspection task is queued by name. `arch`, `num_classes` and `input_shape` may be left out:
the worker then reads them from the checkpoint (its structure record, else its weights) and
takes the architecture's usual input size, and the answer shows what it found. The request
waits up to `inspect_wait_s` for a worker to load the weights:

- 201 with params and FLOPs when the worker found it `ready`;
- 422 problem with the worker's one-line reason when it is `invalid`;
- 202 with `status: "pending"` when no answer came in time (no inspect worker running, or a
  large model); poll `GET /v1/models/{id}` (its `Location`) until the status changes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session, sessionmaker

from infra.storage import ArtifactStore
from infra.store import architectures, uploads
from infra.store.models import Model
from service.api import crud
from service.api.deps import (
    AdminToken,
    QueueDep,
    SessionDep,
    SessionFactoryDep,
    SettingsDep,
    StorageDep,
    TaskQueue,
)
from service.api.errors import InvalidUpload, ServiceUnavailable
from service.api.forms import ModelUploadFields, parse_fields
from service.api.schemas.common import MAX_DB_INT
from service.api.schemas.models import ModelPublic, ModelsPublic
from service.api.session_route import SessionReleasingRoute
from service.api.uploads import ReceivedFile, receive_multipart
from service.api.validation.checkpoint import check_checkpoint, checkpoint_format

log = logging.getLogger("edgeprune.api")
router = APIRouter(prefix="/v1/models", tags=["models"], route_class=SessionReleasingRoute)
POLL_INTERVAL_S = 0.2


def _check_architecture(factory: sessionmaker[Session], arch: str | None) -> None:
    """Only names some worker can build (GET /v1/architectures): refused before any upload
    is stored or inspected. None: the checkpoint's record names it (the worker checks)."""
    if arch is None:
        return
    with factory() as session:
        known = architectures.known_names(session)
    if arch not in known:
        raise InvalidUpload(
            f"unknown arch {arch!r}; known: {', '.join(known)}", loc=["body", "arch"]
        )


def _store_checkpoint(storage: ArtifactStore, received: ReceivedFile) -> str:
    fmt = checkpoint_format(received.filename)
    check_checkpoint(received.path, fmt)
    sha256, size = storage.put_file(received.path)
    if sha256 != received.sha256 or size != received.size:  # the disk or the store lied
        raise RuntimeError("stored checkpoint differs from the received bytes")
    return fmt


def _insert_model(
    factory: sessionmaker[Session], fields: ModelUploadFields, received: ReceivedFile, fmt: str
) -> str:
    with factory.begin() as session:
        model = uploads.add_model(
            session,
            name=fields.name or Path(received.filename).stem,
            arch=fields.arch,
            num_classes=fields.num_classes,
            input_shape=fields.input_shape,
            filename=received.filename,
            format=fmt,
            sha256=received.sha256,
            size=received.size,
        )
        return model.id


def _queue_inspection(factory: sessionmaker[Session], queue: TaskQueue, model_id: str) -> None:
    try:
        queue.enqueue_inspect(model_id)
    except Exception as exc:
        # Nothing would ever inspect this row: drop it so the client simply retries.
        log.warning("could not queue inspection of %s: %s", model_id, exc)
        with factory.begin() as session:
            uploads.drop_pending_model(session, model_id)
        raise ServiceUnavailable("the task queue is unreachable; try again later") from exc


def _read_model(factory: sessionmaker[Session], model_id: str) -> Model:
    with factory() as session:
        return crud.get_model(session, model_id)


async def _wait_for_inspection(
    factory: sessionmaker[Session], model_id: str, wait_s: float
) -> Model:
    deadline = time.monotonic() + wait_s
    while True:
        model = await anyio.to_thread.run_sync(_read_model, factory, model_id)
        if model.status != uploads.PENDING or time.monotonic() >= deadline:
            return model
        await anyio.sleep(min(POLL_INTERVAL_S, max(deadline - time.monotonic(), 0.0)))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ModelPublic,
    responses={
        202: {"model": ModelPublic, "description": "Stored; inspection still pending."},
        413: {"description": "Checkpoint larger than max_upload_bytes."},
        415: {"description": "Not multipart/form-data."},
        422: {"description": "Bad fields, bad file format, or does not load into arch."},
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
                            "arch": {"type": "string", "example": "vgg11"},
                            "num_classes": {"type": "integer", "example": 10},
                            "input_shape": {"type": "string", "example": "1,32,32"},
                            "name": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def upload_model(
    request: Request,
    response: Response,
    _token: AdminToken,
    settings: SettingsDep,
    storage: StorageDep,
    queue: QueueDep,
    factory: SessionFactoryDep,
) -> Model:
    """Upload a checkpoint (`.pt`/`.pth` zip state dict or `.safetensors`); `arch`,
    `num_classes` and `input_shape` are needed only where the checkpoint does not record them."""
    async with receive_multipart(
        request,
        file_field="file",
        max_file_bytes=settings.max_upload_bytes,
        tmp_dir=settings.data_dir / "tmp",
    ) as form:
        fields = parse_fields(ModelUploadFields, form.fields)
        await anyio.to_thread.run_sync(_check_architecture, factory, fields.arch)
        assert form.file is not None  # receive_multipart guarantees a file
        received = form.file
        fmt = await anyio.to_thread.run_sync(_store_checkpoint, storage, received)
    model_id = await anyio.to_thread.run_sync(_insert_model, factory, fields, received, fmt)
    await anyio.to_thread.run_sync(_queue_inspection, factory, queue, model_id)
    model = await _wait_for_inspection(factory, model_id, settings.inspect_wait_s)
    response.headers["Location"] = f"/v1/models/{model.id}"
    if model.status == uploads.INVALID:
        reason = model.error or "unknown reason"
        raise InvalidUpload(
            f"checkpoint does not load into {model.arch}: {reason}"
            if model.arch
            else f"checkpoint cannot be used: {reason}",
            loc=["body", "file"],
        )
    if model.status == uploads.PENDING:
        response.status_code = status.HTTP_202_ACCEPTED
    return model


@router.get("", response_model=ModelsPublic)
def list_models(
    session: SessionDep,
    _token: AdminToken,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
) -> ModelsPublic:
    rows, count = crud.list_models(session, limit=limit, offset=offset)
    return ModelsPublic(data=[ModelPublic.model_validate(r) for r in rows], count=count)


@router.get("/{model_id}", response_model=ModelPublic)
def get_model(model_id: str, session: SessionDep, _token: AdminToken) -> Model:
    return crud.get_model(session, model_id)
