"""Dependencies of the routes, as `Annotated` aliases.

Everything heavy (engine, storage, queue) is made in the app's lifespan and reached through
`request.app.state`; nothing here is created at import.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from contextvars import ContextVar
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from infra.settings import Settings
from infra.storage import ArtifactStore
from infra.store.models import Token
from infra.store.tokens import lookup_token
from service.api.errors import Forbidden, TooManyRequests, Unauthorized
from service.api.metrics import ApiMetrics
from service.api.ratelimit import FailedAuthLimiter

# auto_error=False: a missing header becomes our 401 problem, not FastAPI's plain 403.
_bearer = HTTPBearer(auto_error=False, description="An admin or device token.")


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session_factory(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessions
    return factory


SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]


async def get_session(factory: SessionFactoryDep) -> AsyncIterator[Session]:
    # Closed when the route function returns (scope="function"), before a streamed body is
    # sent: a long SSE stream or download must not hold a pooled connection.
    # An async generator on purpose: its exit runs on the event loop. A sync one would need
    # a worker thread to give its connection back, and under a burst every worker thread can
    # be waiting for a connection, so none would ever come back (measured: 60+ concurrent
    # POST /v1/jobs hung until the pool timeout). Closing only returns the connection.
    session = factory()
    token = _request_session.set(session)
    try:
        yield session
    finally:
        _request_session.reset(token)
        session.close()


# The request's session, for SessionReleasingRoute (service/api/session_route.py) to close
# as soon as the endpoint returns; the thread pool copies the context into the endpoint.
_request_session: ContextVar[Session | None] = ContextVar("edgeprune_request_session", default=None)


def close_request_session() -> None:
    session = _request_session.get()
    if session is not None:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_storage(request: Request) -> ArtifactStore:
    storage: ArtifactStore = request.app.state.storage
    return storage


StorageDep = Annotated[ArtifactStore, Depends(get_storage)]


class TaskQueue(Protocol):
    """What the API needs from the queue client made in the lifespan (tasks sent by name)."""

    def enqueue_job(self, job_id: str) -> None: ...

    def enqueue_inspect(self, model_id: str) -> None: ...

    def ping(self) -> None: ...


def get_queue(request: Request) -> TaskQueue:
    queue: TaskQueue = request.app.state.queue
    return queue


QueueDep = Annotated[TaskQueue, Depends(get_queue)]


def get_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


MetricsDep = Annotated[ApiMetrics, Depends(get_metrics)]


def _refuse(request: Request, detail: str) -> Unauthorized | TooManyRequests:
    limiter: FailedAuthLimiter = request.app.state.auth_limiter
    client = request.client.host if request.client else "unknown"
    wait = limiter.record_failure(client)
    if wait is not None:
        return TooManyRequests(
            f"too many failed authentications from this address; retry in {wait:.0f} s",
            retry_after_s=wait,
        )
    return Unauthorized(detail)


def _check_token(request: Request, session: Session, authorization: str | None) -> Token:
    scheme, _, secret = (authorization or "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise _refuse(request, "send an 'Authorization: Bearer <token>' header")
    # Looked up by the sha256 of the secret (only hashes are stored), so the database never
    # compares secrets; the hashes are compared again in constant time, which keeps the check
    # correct even if a backend's index lookup were ever case- or collation-insensitive.
    token = lookup_token(session, secret)
    digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
    if token is None or token.revoked_at is not None:
        raise _refuse(request, "the bearer token is unknown or revoked")
    if not hmac.compare_digest(token.token_hash, digest):
        raise _refuse(request, "the bearer token is unknown or revoked")
    return token


def authenticate(request: Request) -> Token:
    """Check the request's bearer token (401, or 429 past the failure budget) and remember
    it for the `CurrentToken` dependency. Used by routes that must authenticate before
    their body is parsed (service/api/auth_first.py)."""
    factory: sessionmaker[Session] = request.app.state.sessions
    with factory() as session:
        token = _check_token(request, session, request.headers.get("authorization"))
        session.expunge(token)  # only its plain columns are read afterwards
    request.state.token = token
    return token


def current_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Token:
    checked: Token | None = getattr(request.state, "token", None)
    if checked is not None:
        return checked
    # `credentials` only documents the scheme in OpenAPI; the raw header is what is checked.
    del credentials
    # Its own short session: the route's session must not hold a pooled connection while
    # the request waits for a worker thread, or a burst of requests starves the pool.
    return authenticate(request)


CurrentToken = Annotated[Token, Depends(current_token)]


def admin_token(token: CurrentToken) -> Token:
    if token.kind != "admin":
        raise Forbidden("this route needs an admin token")
    return token


AdminToken = Annotated[Token, Depends(admin_token)]
