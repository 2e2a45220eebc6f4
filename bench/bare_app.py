"""The floor the manifest route is compared against: a FastAPI app with one route that
answers a fixed small JSON document with a strong ETag, and 304 on a matching If-None-Match.

No middleware, no auth, no database: what is left is uvicorn, Starlette routing and the
response itself. Served by the same uvicorn settings as the real API (`--factory`).
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request, Response

BODY = {
    "deployment": "bare",
    "version": 1,
    "job_id": "job_0000000000000000",
    "sha256": "0" * 64,
    "size": 4096,
    "url": "http://127.0.0.1/v1/artifacts/" + "0" * 64,
}
ETAG = '"1-0000000000000000"'


def create_bare_app() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    payload = json.dumps(BODY).encode()
    headers = {"ETag": ETAG, "Cache-Control": "no-cache"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/deployments/{name}/manifest")
    async def manifest(name: str, request: Request) -> Response:
        if request.headers.get("if-none-match") == ETAG:
            return Response(status_code=304, headers=headers)
        return Response(payload, media_type="application/json", headers=headers)

    return app
