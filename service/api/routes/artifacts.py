"""`/v1/artifacts/{sha256}`: any stored blob by its digest, with `Range` for resumed downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from service.api import access
from service.api.blobs import blob_response
from service.api.deps import CurrentToken, SessionDep, StorageDep
from service.api.session_route import SessionReleasingRoute

router = APIRouter(prefix="/v1/artifacts", tags=["artifacts"], route_class=SessionReleasingRoute)
Sha256 = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="lowercase hex sha256")]


# GET and HEAD are registered separately: one route with both methods would give the two
# OpenAPI operations the same operationId.
@router.head(
    "/{sha256}", response_class=Response, operation_id="get_artifact_v1_artifacts__sha256__head"
)
@router.get(
    "/{sha256}",
    response_class=Response,
    operation_id="get_artifact_v1_artifacts__sha256__get",
    responses={
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "Partial content for a Range request."},
        304: {"description": "If-None-Match matched (the ETag is the sha256)."},
        416: {"description": "Range outside the blob."},
    },
)
def get_artifact(
    sha256: Sha256, request: Request, session: SessionDep, storage: StorageDep, token: CurrentToken
) -> Response:
    """The bytes of a stored blob. Device tokens may read only their deployment's artifacts."""
    access.require_artifact(session, token, sha256)
    return blob_response(
        request,
        storage,
        sha256=sha256,
        size=storage.size(sha256),
        content_type="application/octet-stream",
    )
