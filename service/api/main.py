"""Builds the FastAPI app: `create_app(settings=None)`.

Nothing heavy happens at import or in `create_app`: the database engine (after applying
migrations), the artifact store, the queue client and the reconciler are made in the
lifespan and torn down with it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext

import anyio.to_thread
from fastapi import FastAPI

from infra.settings import Settings, get_settings
from infra.supervisor_watch import follow_supervisor
from service.api.errors import install_error_handlers
from service.api.heap import startup_heap_frozen
from service.api.limits import BodySizeLimitMiddleware
from service.api.metrics import ApiMetrics, MetricsMiddleware
from service.api.openapi import install_openapi
from service.api.poll.middleware import PollFastPathMiddleware
from service.api.poll.path import PollPath
from service.api.ratelimit import FailedAuthLimiter
from service.api.routes import (
    architectures,
    artifacts,
    datasets,
    deployments,
    devices,
    health,
    jobs,
    models,
)
from service.dashboard import mount_dashboard

log = logging.getLogger("edgeprune.api")

DESCRIPTION = """
Compress CNNs for edge devices. Upload a checkpoint and the edge task's data, submit a job
with a compression target, follow its events, and promote the result to a deployment that
devices poll.

Every route but `/healthz` and `/readyz` needs `Authorization: Bearer <token>` (for
`/metrics`, set `authorization` in Prometheus' scrape config).
Errors are RFC 9457 `application/problem+json`.
"""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Imported here so importing the API module stays light (Celery and fsspec are not).
    from infra.queue import JobQueue
    from infra.storage import ArtifactStore
    from infra.store.db import make_engine, make_session_factory
    from infra.store.migrate import upgrade_database
    from service.reconciler import Reconciler

    settings: Settings = app.state.settings
    database_url = settings.resolved_database_url()
    await anyio.to_thread.run_sync(upgrade_database, database_url)
    engine = make_engine(database_url)
    app.state.sessions = make_session_factory(engine)
    app.state.storage = await anyio.to_thread.run_sync(
        ArtifactStore, settings.resolved_artifacts_url()
    )
    queue = JobQueue(settings)
    app.state.queue = queue
    reconciler = Reconciler(app.state.sessions, queue, settings)
    reconciler.start()
    poll_path = PollPath(engine, app.state.sessions, app.state.metrics, settings.public_url)
    poll_path.start()
    app.state.poll_path = poll_path
    log.info("EdgePrune API ready (database %s)", engine.url.render_as_string(hide_password=True))
    try:
        with startup_heap_frozen() if settings.api_freeze_heap else nullcontext():
            yield
    finally:
        del app.state.poll_path
        await poll_path.stop()
        reconciler.stop()
        queue.close()
        engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    follow_supervisor()  # a child of `edgeprune serve` ends with it
    app = FastAPI(
        title="EdgePrune",
        version="1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics = ApiMetrics()
    app.state.auth_limiter = FailedAuthLimiter(settings.unauthenticated_rate_limit_per_minute)

    install_error_handlers(app)
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_request_bytes=settings.max_request_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    # Added after the size limit = outside it: it times the whole request, refusals included.
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Outermost: device polls it can answer from memory skip the rest of the stack (and
    # count themselves in the metrics); see service/api/poll/.
    app.add_middleware(PollFastPathMiddleware)

    for module in (health, models, architectures, datasets, jobs, deployments, artifacts, devices):
        app.include_router(module.router)
    mount_dashboard(app)
    install_openapi(app)
    return app
