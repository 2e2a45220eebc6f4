"""`edgeprune deployments promote|show|list|rollback`."""

from __future__ import annotations

import json
from typing import Any

import typer

from service.cli.options import DEFAULT_SERVER, EXIT_CODES, JsonOutput, Server, Token

app = typer.Typer(
    help="Point deployments at succeeded jobs; inspect and roll back.", epilog=EXIT_CODES
)


def _request(server: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    from service.cli.client import request_json  # httpx loads only when a command runs

    return request_json(server, token, method, path, **kwargs)


def _print(deployment: dict[str, Any]) -> None:
    typer.echo(
        f"{deployment['name']}  version {deployment['current_version']}  "
        f"job {deployment['current_job_id']}"
    )
    for version in deployment["history"]:
        mark = "*" if version["version"] == deployment["current_version"] else " "
        typer.echo(
            f"  {mark} v{version['version']:<4} {version['job_id']}  {version['created_at']}"
        )


@app.command("promote")
def promote(
    name: str,
    job_id: str,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Make JOB_ID's model the current version of deployment NAME (created if needed)."""
    body = _request(server, token, "PUT", f"/v1/deployments/{name}", json={"job_id": job_id})
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        _print(body)


@app.command("show")
def show(
    name: str, server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
) -> None:
    """Show a deployment, its history and its current manifest."""
    body = _request(server, token, "GET", f"/v1/deployments/{name}")
    manifest = None
    if body["current_version"] is not None:
        manifest = _request(server, token, "GET", f"/v1/deployments/{name}/manifest")
    if as_json:
        typer.echo(json.dumps({**body, "manifest": manifest}, indent=2))
        return
    _print(body)
    if manifest:
        typer.echo(f"  model    {manifest['url']}  ({manifest['size']} bytes)")
        typer.echo(f"  sha256   {manifest['sha256']}")


@app.command("list")
def list_deployments(server: Server = DEFAULT_SERVER, token: Token = None) -> None:
    """List deployments with their current version."""
    for d in _request(server, token, "GET", "/v1/deployments")["data"]:
        typer.echo(f"{d['name']}  version {d['current_version']}  job {d['current_job_id']}")


@app.command("rollback")
def rollback(
    name: str,
    version: int | None = typer.Option(None, help="Version to return to (default: previous)."),
    server: Server = DEFAULT_SERVER,
    token: Token = None,
) -> None:
    """Point NAME back at an earlier version."""
    payload = {"version": version} if version is not None else None
    _print(_request(server, token, "POST", f"/v1/deployments/{name}/rollback", json=payload))
