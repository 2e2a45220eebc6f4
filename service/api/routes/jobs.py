"""`/v1/jobs`: submit, list, inspect and cancel compression jobs; their reports and artifacts.

The database is the source of truth: a job is created `queued` with its first `state`
event in one transaction, and only then is the broker told (by task name). If that send
fails the job stays queued and the reconciler sends it again, so the client still gets 202.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from sqlalchemy.orm import Session
from sse_starlette import EventSourceResponse

from edgeprune.contracts.artifacts import REPORT_JSON
from edgeprune.contracts.limits import reachable_limit
from infra.store import jobs as job_store
from infra.store import uploads
from infra.store.models import Dataset, Job, Model
from service.api import crud
from service.api.auth_first import AuthFirstRoute
from service.api.blobs import blob_response
from service.api.deps import (
    AdminToken,
    QueueDep,
    SessionDep,
    SessionFactoryDep,
    StorageDep,
    admin_token,
)
from service.api.errors import (
    ArtifactNotFound,
    ArtifactNotReady,
    Conflict,
    DatasetNotFound,
    InvalidInput,
    InvalidReference,
    ModelNotFound,
)
from service.api.events import job_change_feed, job_event_stream, latest_event_id
from service.api.json_body import require_json
from service.api.schemas.common import MAX_DB_INT
from service.api.schemas.jobs import (
    ArtifactPublic,
    JobCreate,
    JobCreated,
    JobPublic,
    JobsPublic,
    JobState,
)

log = logging.getLogger("edgeprune.api")
router = APIRouter(prefix="/v1/jobs", tags=["jobs"], route_class=AuthFirstRoute)

# Proxies close idle connections; a comment line every so often keeps the stream open.
KEEPALIVE_S = 15
CONTENT_TYPES = {".onnx": "application/octet-stream", ".pt": "application/octet-stream"}


def _check_references(session: Session, body: JobCreate) -> list[str]:
    """Refuse a model or dataset the job cannot use; return the notes for the submitter (the
    dataset's images resized to the model's input)."""
    try:
        model = crud.get_model(session, body.model_id)
    except ModelNotFound as exc:
        raise InvalidReference(exc.detail, loc=["body", "model_id"]) from None
    if model.status == uploads.INVALID:
        raise InvalidReference(
            f"model {model.id} is invalid: {model.error or 'it does not load'}",
            loc=["body", "model_id"],
        )
    if model.status != uploads.READY:
        raise Conflict(f"model {model.id} is still being inspected; retry when it is ready")
    try:
        dataset = crud.get_dataset(session, body.dataset_id)
    except DatasetNotFound as exc:
        raise InvalidReference(exc.detail, loc=["body", "dataset_id"]) from None
    notes = _input_notes(model, dataset)
    _check_reachable(model, dataset, body)
    return notes


def _check_reachable(model: Model, dataset: Dataset, body: JobCreate) -> None:
    """Refuse a target past what the model's per-unit floors allow, the worker's own test
    (`require_reachable`) on the limits the inspection recorded, instead of queueing a job
    that would fail before training. Left to the worker when the task's classes are not the
    checkpoint's (its head is then made afresh, which moves the limit a little) and for
    models inspected before limits were recorded."""
    if model.num_classes is None or len(dataset.classes) != model.num_classes:
        return
    target = body.target
    limit = reachable_limit(model.limits, target.metric, body.channel_multiple)
    if limit is None or target.reduction <= limit:
        return
    multiple = f" at channel_multiple {body.channel_multiple}" if body.channel_multiple > 1 else ""
    raise InvalidInput(
        f"a {target.metric} reduction of {target.reduction:.3f} is out of reach for model "
        f"{model.id} ({model.arch}){multiple}: every prunable unit at its floor gives "
        f"{limit:.3f}",
        loc=["body", "target", "reduction"],
    )


def _input_notes(model: Model, dataset: Dataset) -> list[str]:
    """The dataset's inputs against the model's: another channel count is refused (the
    engine would convert colour silently); another height and width is resized, and said."""
    if not model.input_shape or len(model.input_shape) != 3 or len(dataset.input_shape) != 3:
        return []  # rows from before shapes were recorded as C,H,W: the engine decides
    (m_c, m_h, m_w), (d_c, d_h, d_w) = model.input_shape, dataset.input_shape
    if m_c != d_c:
        raise InvalidReference(
            f"dataset {dataset.id} has {d_c}-channel inputs but model {model.id} "
            f"({model.arch}) takes {m_c}-channel inputs: use a dataset with {m_c} channel(s), "
            f"or a checkpoint built for {d_c}",
            loc=["body", "dataset_id"],
        )
    if (m_h, m_w) != (d_h, d_w):
        return [
            f"the dataset's inputs are {d_h}x{d_w} and model {model.id} ({model.arch}) takes "
            f"{m_h}x{m_w}: the worker resizes them to {m_h}x{m_w} (bilinear) before training"
        ]
    return []


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    # Auth first, then the media type: a client without a token learns nothing else.
    dependencies=[Depends(admin_token), Depends(require_json)],
    responses={422: {"description": "Bad target or bounds, unknown or invalid model/dataset."}},
)
def create_job(
    body: JobCreate,
    response: Response,
    session: SessionDep,
    queue: QueueDep,
    _token: AdminToken,
) -> JobCreated:
    """Queue a compression job; follow it at `Location` or its `/events` stream. `notes` say
    what the submitter should know (the dataset's images resized to the model's input);
    each is also the job's `log` event."""
    notes = _check_references(session, body)
    config: dict[str, Any] = body.model_dump(
        mode="json", exclude={"model_id", "dataset_id", "deployment"}
    )
    job = job_store.create_job(
        session,
        model_id=body.model_id,
        dataset_id=body.dataset_id,
        config=config,
        deployment=body.deployment,
        notes=notes,
    )
    session.commit()
    try:
        queue.enqueue_job(job.id)
    except Exception:
        # Still 202: the job is safely queued in the database and the reconciler re-sends it.
        log.warning("could not send job %s; the reconciler will", job.id, exc_info=True)
    else:
        job_store.mark_enqueued(session, job.id)
        session.commit()
    session.refresh(job)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return JobCreated.model_validate(job).model_copy(update={"notes": notes})


@router.get("", response_model=JobsPublic)
def list_jobs(
    session: SessionDep,
    _token: AdminToken,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_DB_INT)] = 0,
) -> JobsPublic:
    """Jobs newest first, optionally only those in one state."""
    rows, count = crud.list_jobs(session, state=state, limit=limit, offset=offset)
    return JobsPublic(data=[JobPublic.model_validate(r) for r in rows], count=count)


# Registered before "/{job_id}" so that "events" is not taken for a job id.
@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def all_job_events(
    factory: SessionFactoryDep,
    _token: AdminToken,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_DB_INT, description="Notify of events after this id")
    ] = None,
    follow: Annotated[
        bool, Query(description="Keep the stream open for new events (false: replay, then end)")
    ] = True,
) -> EventSourceResponse:
    """A live feed of every job's changes (`event: job`, JSON `{job_id, seq, kind, state,
    phase}`), for listings that refresh without polling. Starts at the newest event unless
    `Last-Event-ID` (or `?after=`) asks for a replay; with `follow` (the default) it never
    ends."""
    if last_event_id is None and after is None:
        start = latest_event_id(factory)
    else:
        start = _resume_point(last_event_id, after)
    return EventSourceResponse(
        job_change_feed(factory, start, follow=follow),
        ping=KEEPALIVE_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/{job_id}", response_model=JobPublic)
def get_job(job_id: str, session: SessionDep, _token: AdminToken) -> Job:
    return crud.get_job(session, job_id)


def _resume_point(last_event_id: str | None, after: int | None) -> int:
    # The header wins: it is what a reconnecting EventSource sends by itself.
    if last_event_id is not None:
        try:
            return min(max(int(last_event_id.strip()), 0), MAX_DB_INT)
        except ValueError:
            raise InvalidInput(
                "Last-Event-ID must be an event id (an integer)", loc=["header", "Last-Event-ID"]
            ) from None
    return after or 0


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def job_events(
    job_id: str,
    session: SessionDep,
    factory: SessionFactoryDep,
    _token: AdminToken,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_DB_INT, description="Replay events after this id")
    ] = None,
) -> EventSourceResponse:
    """Every event of the job as SSE (`id:` seq, `event:` kind, JSON `data:`); replays from
    `Last-Event-ID` (or `?after=`), follows live events, and ends after the terminal state."""
    crud.get_job(session, job_id)  # 404 before the stream starts
    start = _resume_point(last_event_id, after)
    return EventSourceResponse(
        job_event_stream(factory, job_id, start),
        ping=KEEPALIVE_S,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    responses={
        202: {"model": JobPublic, "description": "Running: the worker stops within one step."},
        409: {"description": "The job already succeeded or failed."},
    },
)
def cancel_job(job_id: str, response: Response, session: SessionDep, _token: AdminToken) -> Job:
    """Cancel a job: a queued one at once (200), a running one cooperatively (202)."""
    job = crud.get_job(session, job_id)
    # The store decides atomically, so a job that finishes meanwhile is answered as such.
    state = job_store.request_cancel(session, job_id)
    session.commit()
    if state in (job_store.SUCCEEDED, job_store.FAILED):
        raise Conflict(f"job {job_id} already {state}; nothing to cancel")
    if state == job_store.RUNNING:
        response.status_code = status.HTTP_202_ACCEPTED
    session.refresh(job)
    return job


def _artifact_or_problem(session: Session, job_id: str, name: str) -> tuple[Job, Any]:
    job = crud.get_job(session, job_id)
    artifact = crud.get_job_artifact(session, job_id, name)
    if artifact is None:
        if job.state in (job_store.QUEUED, job_store.RUNNING):
            raise ArtifactNotReady(f"job {job_id} is {job.state}; {name} exists once it succeeds")
        raise ArtifactNotFound(f"job {job_id} ({job.state}) has no artifact {name!r}")
    return job, artifact


@router.get("/{job_id}/report", responses={409: {"description": "Job not finished yet."}})
def get_report(
    job_id: str, session: SessionDep, storage: StorageDep, _token: AdminToken
) -> Response:
    """The job's report.json (see ALGORITHM.md, 'The report')."""
    _, artifact = _artifact_or_problem(session, job_id, REPORT_JSON)
    return Response(content=storage.read_range(artifact.sha256, 0), media_type="application/json")


@router.get("/{job_id}/artifacts", response_model=list[ArtifactPublic])
def list_artifacts(job_id: str, session: SessionDep, _token: AdminToken) -> list[Any]:
    crud.get_job(session, job_id)
    return list(crud.list_job_artifacts(session, job_id))


@router.get(
    "/{job_id}/artifacts/{name}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "Partial content for a Range request."},
        409: {"description": "Job not finished yet."},
        416: {"description": "Range outside the artifact."},
    },
)
def get_artifact(
    job_id: str,
    name: str,
    request: Request,
    session: SessionDep,
    storage: StorageDep,
    _token: AdminToken,
) -> Response:
    """One of the job's artifacts: model.onnx, baseline.onnx, pruned.pt, report.json, plots."""
    _, artifact = _artifact_or_problem(session, job_id, name)
    content_type = artifact.content_type or (
        CONTENT_TYPES.get(name[name.rfind(".") :])
        or mimetypes.guess_type(name)[0]
        or "application/octet-stream"
    )
    return blob_response(
        request,
        storage,
        sha256=artifact.sha256,
        size=storage.size(artifact.sha256),
        content_type=content_type,
        filename=name,
    )
