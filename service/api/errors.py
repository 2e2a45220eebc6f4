"""Domain errors of the API and their one mapping to RFC 9457 problem+json.

Routes raise these exceptions; they never build error responses by hand. Every response that
is not a success leaves through `problem_response`, including FastAPI's own validation errors,
Starlette's 404/405 and anything unexpected (logged here, never shown to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger("edgeprune.api")

PROBLEM_JSON = "application/problem+json"
# Problem types are URNs: stable names clients can match on without a website behind them.
TYPE_PREFIX = "urn:edgeprune:problem:"


class ProblemError(StarletteHTTPException):
    """Base of our domain errors: one HTTP status, a stable type slug and a human detail.

    A subclass of Starlette's HTTPException only so that FastAPI lets it through unchanged
    where it wraps other errors (a 413 raised while FastAPI reads a JSON body would otherwise
    turn into "400 error parsing the body"); its own handler is the one that answers.
    """

    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(self.status, detail, dict(headers or {}))
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})
        self.extra = dict(extra or {})


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Missing or invalid bearer token"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="edgeprune"'})


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed for this token"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class ModelNotFound(NotFound):
    slug, title = "model-not-found", "Model not found"


class DatasetNotFound(NotFound):
    slug, title = "dataset-not-found", "Dataset not found"


class JobNotFound(NotFound):
    slug, title = "job-not-found", "Job not found"


class DeploymentNotFound(NotFound):
    slug, title = "deployment-not-found", "Deployment not found"


class ArtifactNotFound(NotFound):
    slug, title = "artifact-not-found", "Artifact not found"


class DeviceNotFound(NotFound):
    slug, title = "device-not-found", "Device not found"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict with the current state"


class ArtifactNotReady(Conflict):
    slug, title = "artifact-not-ready", "Artifact not ready"


class JobNotSucceeded(Conflict):
    slug, title = "job-not-succeeded", "Job has not succeeded"


class DeviceNameTaken(Conflict):
    slug, title = "device-name-taken", "A live device has this name"


class NothingToRollBack(Conflict):
    slug, title = "nothing-to-roll-back", "No earlier version to roll back to"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class RangeNotSatisfiable(ProblemError):
    status, slug, title = 416, "range-not-satisfiable", "Range not satisfiable"


class InvalidInput(ProblemError):
    """A semantically invalid request; `field` is the location, as in validation errors."""

    status, slug, title = 422, "invalid-input", "Invalid input"

    def __init__(self, detail: str, *, loc: Sequence[str | int]) -> None:
        super().__init__(
            detail, extra={"errors": [{"loc": list(loc), "msg": detail, "type": self.slug}]}
        )


class InvalidUpload(InvalidInput):
    slug, title = "invalid-upload", "Uploaded file is not acceptable"


class InvalidReference(InvalidInput):
    slug, title = "invalid-reference", "Referenced resource is missing or unusable"


class InvalidTarget(InvalidInput):
    slug, title = "invalid-target", "Invalid compression target"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "too-many-requests", "Too many failed authentications"

    def __init__(self, detail: str, *, retry_after_s: float) -> None:
        super().__init__(detail, headers={"Retry-After": str(int(retry_after_s + 0.999))})


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


def problem_response(
    status: int,
    *,
    title: str,
    detail: str,
    type_: str = "about:blank",
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"type": type_, "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def _from_problem(request: Request, exc: ProblemError) -> JSONResponse:
    return problem_response(
        exc.status,
        title=exc.title,
        detail=exc.detail,
        type_=TYPE_PREFIX + exc.slug,
        instance=request.url.path,
        headers=exc.headers,
        extra=exc.extra,
    )


def _clean_validation_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Pydantic's `input`/`ctx` may hold the client's whole body or non-JSON values (a
    # ValueError in ctx): send only where and what.
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in errors]


def _loc_text(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _clean_validation_errors(exc.errors())
    detail = "; ".join(f"{_loc_text(e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem_response(
        422,
        title="Request validation failed",
        detail=detail or "invalid request",
        type_=TYPE_PREFIX + "validation-error",
        instance=request.url.path,
        extra={"errors": errors},
    )


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return _from_problem(request, exc)


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    # Starlette's own errors (unknown route, wrong method, ...): keep their status and
    # headers (e.g. Allow on 405) but give them the problem shape.
    phrase = _reason(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else phrase
    return problem_response(
        exc.status_code,
        title=phrase,
        detail=detail,
        instance=request.url.path,
        headers=exc.headers,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        500,
        title="Internal server error",
        detail="An unexpected error occurred; it has been logged.",
        type_=TYPE_PREFIX + "internal-error",
        instance=request.url.path,
    )


async def _on_client_gone(request: Request, exc: Exception) -> JSONResponse:
    # The client hung up mid-upload: nobody reads this answer, and it is not a server bug.
    log.info("client went away during %s %s", request.method, request.url.path)
    return problem_response(
        400, title="Bad Request", detail="the client disconnected", instance=request.url.path
    )


async def _on_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return _from_problem(
        request,
        ServiceUnavailable(
            "the database is unavailable; retry shortly", headers={"Retry-After": "5"}
        ),
    )


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _translate(problem: type[ProblemError], template: str = "{}") -> Any:
    """A handler answering a persistence-layer exception as one of our problems."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        return _from_problem(request, problem(template.format(exc)))

    return handler


def install_error_handlers(app: FastAPI) -> None:
    # The store and storage raise their own LookupErrors; they mean 404 to a client.
    from infra.storage import ArtifactNotFound as StoredBlobMissing
    from infra.storage import InvalidDigest
    from infra.store.deployments import DeploymentNotFound as StoreDeploymentNotFound
    from infra.store.jobs import JobNotFound as StoreJobNotFound

    app.add_exception_handler(StoredBlobMissing, _translate(ArtifactNotFound, "no stored blob {}"))
    app.add_exception_handler(InvalidDigest, _translate(ArtifactNotFound))
    app.add_exception_handler(StoreJobNotFound, _translate(JobNotFound))
    app.add_exception_handler(StoreDeploymentNotFound, _translate(DeploymentNotFound))
    app.add_exception_handler(ClientDisconnect, _on_client_gone)
    # A database that is restarting or locked is a temporary condition, not a server bug.
    app.add_exception_handler(OperationalError, _on_database_unavailable)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    # Registered for Exception, Starlette runs this in ServerErrorMiddleware: the outermost
    # layer, so even errors raised in other middleware end as a problem, not a traceback.
    app.add_exception_handler(Exception, _on_unexpected)
