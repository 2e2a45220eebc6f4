"""Prototypes of two fixes to the manifest route, for measuring them before anyone edits it.

Nothing here is used by the service. `bench.manifest_cost` times the route as it is and
with these applied in-process (by `app.dependency_overrides` and by swapping
`crud.manifest_row`), so the API owner sees what each fix is worth.

1. `prebuilt_manifest_row`: the same query as `service.api.crud.manifest_row`, but the
   statement is built once with a bound parameter. Building it (a select of 9 columns over 6
   joins and two `aliased()` entities) and computing its cache key costs more Python than
   running it; SQLAlchemy's compiled cache only saves the SQL string compilation.
2. `async_state_dependencies`: `get_app_settings`, `get_session_factory` and `get_metrics`
   only read `request.app.state`; as plain `def`s FastAPI runs each in the thread pool (a
   hop of tens of µs, and a wait for one of the 40 pool threads under load). As `async def`
   they run on the event loop.
3. `short_token_session`: the fix for the pool starvation the load test finds. Today
   `current_token` reads the token with the request's session (SessionDep), so the pooled
   connection it checks out stays checked out while the request waits in the thread pool's
   queue for its next hop (the route). With more concurrent requests than the pool holds
   (5 + 10 overflow), every pool thread ends up blocked in `current_token` waiting for a
   connection that only a queued request can give back: nothing moves until SQLAlchemy's
   30 s pool timeout. Reading the token in a session of its own, closed before the hop
   ends, means a connection is only held by code that is running (or by a generator exit,
   which FastAPI runs without a thread limit).

`create_app_with_session_fix` (3) and `create_app_with_fixes` (1 and 3) are app factories
for `uvicorn bench.manifest_whatif:create_app_with_fixes --factory`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Select, bindparam, select
from sqlalchemy.orm import Session, aliased

from service.api import crud, deps
from service.api.crud import BASELINE_ARTIFACT, MODEL_ARTIFACT, ManifestRow
from service.api.main import create_app
from service.store.models import (
    Dataset,
    Deployment,
    DeploymentVersion,
    Job,
    JobArtifact,
    Model,
    Token,
)


@cache
def _manifest_statement() -> Select[Any]:
    onnx = aliased(JobArtifact)
    baseline = aliased(JobArtifact)
    return (
        select(
            Deployment.name,
            DeploymentVersion.version,
            Job.id,
            Job.summary,
            Model.input_shape,
            Dataset.classes,
            onnx.sha256,
            onnx.size,
            baseline.sha256,
        )
        .join(
            DeploymentVersion,
            (DeploymentVersion.deployment == Deployment.name)
            & (DeploymentVersion.version == Deployment.current_version),
        )
        .join(Job, Job.id == DeploymentVersion.job_id)
        .join(Model, Model.id == Job.model_id)
        .join(Dataset, Dataset.id == Job.dataset_id)
        .join(onnx, (onnx.job_id == Job.id) & (onnx.name == MODEL_ARTIFACT))
        .outerjoin(baseline, (baseline.job_id == Job.id) & (baseline.name == BASELINE_ARTIFACT))
        .where(Deployment.name == bindparam("name"))
    )


def prebuilt_manifest_row(session: Session, name: str) -> ManifestRow | None:
    row = session.execute(_manifest_statement(), {"name": name}).one_or_none()
    if row is None:
        return None
    return ManifestRow(
        deployment=row[0],
        version=row[1],
        job_id=row[2],
        summary=row[3],
        input_shape=[int(d) for d in row[4]],
        classes=[str(c) for c in row[5]],
        model_sha256=row[6],
        model_size=int(row[7]),
        baseline_sha256=row[8],
    )


_bearer = HTTPBearer(auto_error=False)


def short_token_session(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Token:
    """`deps.current_token`, reading the token in a session closed before returning."""
    factory = request.app.state.sessions
    with factory() as session:
        return deps.current_token(request=request, session=session, credentials=credentials)


async def _settings(request: Request) -> Any:
    return request.app.state.settings


async def _sessions(request: Request) -> Any:
    return request.app.state.sessions


async def _metrics(request: Request) -> Any:
    return request.app.state.metrics


def async_state_dependencies(app: FastAPI) -> None:
    app.dependency_overrides[deps.get_app_settings] = _settings
    app.dependency_overrides[deps.get_session_factory] = _sessions
    app.dependency_overrides[deps.get_metrics] = _metrics


def create_app_with_session_fix() -> FastAPI:
    """The real app with fix 3 only."""
    app = create_app()
    app.dependency_overrides[deps.current_token] = short_token_session
    return app


def create_app_with_fixes() -> FastAPI:
    """The real app with fixes 1 and 3."""
    app = create_app_with_session_fix()
    use_prebuilt_statement(True, crud.manifest_row)
    return app


def use_prebuilt_statement(enabled: bool, original: Callable[..., Any]) -> None:
    crud.manifest_row = prebuilt_manifest_row if enabled else original
