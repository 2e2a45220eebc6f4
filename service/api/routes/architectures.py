"""`/v1/architectures`: the names an upload's `arch` may take (the zoo, plus what workers
reported they can build at start)."""

from __future__ import annotations

from fastapi import APIRouter

from infra.store import architectures
from service.api.deps import AdminToken, SessionDep
from service.api.schemas.architectures import ArchitecturePublic, ArchitecturesPublic
from service.api.session_route import SessionReleasingRoute

router = APIRouter(
    prefix="/v1/architectures", tags=["architectures"], route_class=SessionReleasingRoute
)


@router.get("", response_model=ArchitecturesPublic)
def list_architectures(session: SessionDep, _token: AdminToken) -> ArchitecturesPublic:
    rows = architectures.listed(session)
    data = [
        ArchitecturePublic(
            name=r.name,
            source=r.source,  # type: ignore[arg-type]
            reported_by=r.reported_by,
            reported_at=r.reported_at,
        )
        for r in rows
    ]
    return ArchitecturesPublic(data=data, count=len(data))
