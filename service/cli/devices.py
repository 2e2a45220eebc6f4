"""`edgeprune devices list|show|revoke|delete`: the device fleet over HTTP.

Devices register themselves (`edge-client register`, with an admin token); these commands
are the operator's side of their lifecycle. Revoking stops a device's token at once (its
next poll gets 401) and keeps its history; deleting also forgets its reports.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from service.cli.options import DEFAULT_SERVER, EXIT_CODES, JsonOutput, Server, Token

app = typer.Typer(help="List, revoke and delete edge devices.", epilog=EXIT_CODES)


def _request(server: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    from service.cli.client import request_json  # httpx loads only when a command runs

    return request_json(server, token, method, path, **kwargs)


def _version(device: dict[str, Any]) -> str:
    running, assigned = device["current_version"], device["assigned_version"]
    text = f"v{running}" if running is not None else "-"
    if assigned is not None and assigned != running:
        text += f" (assigned v{assigned})"
    return text


DeviceId = Annotated[str, typer.Argument(help="The device's id (dev_...).")]


def _line(device: dict[str, Any]) -> str:
    failure = device.get("install_failure")
    failed = f"  install of v{failure['version']} failed at {failure['stage']}" if failure else ""
    seen = device["last_seen_at"] or "never"
    return (
        f"{device['id']}  {device['name']:<20} {device['deployment']:<16} "
        f"{device['status']:<10} {_version(device):<22} seen {seen}{failed}"
    )


@app.command("list")
def list_devices(
    deployment: Annotated[
        str | None, typer.Option(metavar="NAME", help="Only this deployment's devices.")
    ] = None,
    all_devices: Annotated[bool, typer.Option("--all", help="Include revoked devices.")] = False,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """List devices: status (online, stale, never_seen, revoked), the version each runs and
    the one its deployment's stage assigns it, last seen time and any failed install."""
    params: dict[str, Any] = {"limit": 1000, "include_revoked": all_devices}
    if deployment:
        params["deployment"] = deployment
    body = _request(server, token, "GET", "/v1/devices", params=params)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for device in body["data"]:
        typer.echo(_line(device))
    if body["count"] > len(body["data"]):
        typer.echo(f"({len(body['data'])} of {body['count']} shown)", err=True)


@app.command("show")
def show(
    device_id: DeviceId,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Show one device: status, versions, latest benchmark, failed install."""
    device = _request(server, token, "GET", f"/v1/devices/{device_id}")
    if as_json:
        typer.echo(json.dumps(device, indent=2))
        return
    typer.echo(_line(device))
    report = device.get("last_report")
    if report:
        latency = report.get("latency") or {}
        typer.echo(
            f"  last report: v{report.get('version')}  p50 {latency.get('p50_ms')} ms  "
            f"speedup {report.get('speedup')}x  at {report.get('created_at', '-')}"
        )


@app.command("revoke")
def revoke(
    device_id: DeviceId,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Revoke DEVICE_ID's token: its next request is refused. Its name is free again."""
    device = _request(server, token, "POST", f"/v1/devices/{device_id}/revoke")
    if as_json:
        typer.echo(json.dumps(device, indent=2))
        return
    typer.echo(f"revoked {device['id']} ({device['name']}, {device['deployment']})")


@app.command("delete")
def delete(
    device_id: DeviceId,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Delete DEVICE_ID and its reports (its token is revoked first)."""
    if not yes:
        typer.confirm(f"Delete {device_id} and all its reports?", abort=True)
    _request(server, token, "DELETE", f"/v1/devices/{device_id}")
    typer.echo(
        json.dumps({"id": device_id, "deleted": True}) if as_json else f"deleted {device_id}"
    )
