"""Probes and metrics: `/healthz` (process alive), `/readyz` (dependencies), `/metrics`."""

from __future__ import annotations

import logging

import anyio.to_thread
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.responses import Response

from service.api import crud
from service.api.deps import AdminToken, MetricsDep, SessionDep
from service.api.errors import ServiceUnavailable
from service.api.session_route import SessionReleasingRoute

log = logging.getLogger("edgeprune.api")
router = APIRouter(tags=["health"], route_class=SessionReleasingRoute)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers. Checks nothing else, so a slow database never restarts the API."""
    return {"status": "ok"}


def _check_dependencies(request: Request) -> dict[str, str]:
    state = request.app.state
    checks: dict[str, str] = {}
    probes = {
        "database": lambda: _ping_database(request),
        "broker": state.queue.ping,
        "storage": state.storage.ping,
    }
    for name, probe in probes.items():
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:
            log.warning("readiness: %s is not ready: %s", name, exc)
            checks[name] = "unavailable"
    return checks


def _ping_database(request: Request) -> None:
    with request.app.state.sessions() as session:
        session.execute(text("SELECT 1"))


@router.get("/readyz", responses={503: {"description": "A dependency is unreachable."}})
async def readyz(request: Request) -> dict[str, object]:
    """Ready to serve: the database, the broker and the artifact store all answer."""
    checks = await anyio.to_thread.run_sync(_check_dependencies, request)
    failing = sorted(name for name, result in checks.items() if result != "ok")
    if failing:
        # Names only: the exception texts (URLs, hosts) stay in the server log.
        raise ServiceUnavailable(
            f"not ready: {', '.join(failing)} unavailable", extra={"checks": checks}
        )
    return {"status": "ok", "checks": checks}


@router.get("/metrics", response_class=Response)
def metrics(session: SessionDep, api_metrics: MetricsDep, _token: AdminToken) -> Response:
    """Prometheus text format."""
    api_metrics.refresh(crud.job_counts_by_state(session))
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
