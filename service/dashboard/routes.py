"""Dashboard pages (`/`, `/login`, `/jobs/new`, `/jobs/{id}`, `/deployments`) and `/static`.

Each page is a Jinja2 shell with no data in it: the page's script reads the REST API with
the operator's bearer token. That keeps one data path (the public, authenticated API) and
lets the shells be served without a token, so a login page can exist at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from infra.store.architectures import ZOO_ARCHITECTURES

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_URL = "/static"
# Bumped with the static files: part of their URLs, so browsers never run a stale script.
ASSET_VERSION = "2"
CHART_JS_VERSION = "4.6.1"

# Scripts only from here (no inline code, no CDN); data only from this origin's API.
# Chart.js sizes its canvas through element.style, which needs no 'unsafe-inline'.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # The shells are tiny and versioned assets carry the cache; always revalidate pages.
    "Cache-Control": "no-cache",
}
JOB_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.globals.update(asset_version=ASSET_VERSION, static_url=STATIC_URL)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


def _page(request: Request, template: str, *, nav: str | None, **context: object) -> HTMLResponse:
    return templates.TemplateResponse(
        request, template, {"nav": nav, **context}, headers=PAGE_HEADERS
    )


@router.get("/")
def jobs_page(request: Request) -> HTMLResponse:
    """Jobs, newest first, filterable by state, refreshed in place."""
    return _page(request, "jobs.html", nav="jobs", title="Jobs")


@router.get("/login")
def login_page(request: Request) -> HTMLResponse:
    return _page(request, "login.html", nav=None, title="Sign in")


@router.get("/jobs/new")
def submit_page(request: Request) -> HTMLResponse:
    # The zoo's names ship with the page; the script adds what the workers reported.
    return _page(request, "submit.html", nav="submit", title="New job", zoo=ZOO_ARCHITECTURES)


@router.get("/jobs/{job_id}")
def job_page(
    request: Request, job_id: Annotated[str, PathParam(pattern=JOB_ID_PATTERN)]
) -> HTMLResponse:
    # Only the id from the URL goes into the shell; whether the job exists is the API's
    # answer to the page's first request (shown on the page as "not found").
    return _page(request, "job.html", nav="jobs", title=f"Job {job_id}", job_id=job_id)


@router.get("/deployments")
def deployments_page(request: Request) -> HTMLResponse:
    return _page(request, "deployments.html", nav="deployments", title="Deployments")


def mount_dashboard(app: FastAPI) -> None:
    """Add the dashboard pages and the static files (scripts, styles, vendored Chart.js)."""
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIR), name="static")
