"""`edgeprune deployments promote|widen|rollback|show|fleet|list`.

A promotion may be staged (`promote NAME JOB --percent 10`): only that share of the
deployment's devices, chosen by a hash of the device id, gets it; `widen` gives it to more
(or, by default, to all) and `rollback` ends the stage.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from service.cli.options import DEFAULT_SERVER, EXIT_CODES, JsonOutput, Server, Token

app = typer.Typer(
    help="Point deployments at succeeded jobs; inspect and roll back.", epilog=EXIT_CODES
)


def _request(server: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    from service.cli.client import request_json  # httpx loads only when a command runs

    return request_json(server, token, method, path, **kwargs)


def _print(deployment: dict[str, Any]) -> None:
    rollout = deployment.get("rollout")
    staged = (
        f"  staged v{rollout['version']} to {rollout['percent']}% of devices" if rollout else ""
    )
    typer.echo(
        f"{deployment['name']}  version {deployment['current_version']}  "
        f"job {deployment['current_job_id']}{staged}"
    )
    for version in deployment["history"]:
        mark = "*" if version["version"] == deployment["current_version"] else " "
        if rollout and version["version"] == rollout["version"]:
            mark = "~"
        typer.echo(
            f"  {mark} v{version['version']:<4} {version['job_id']}  {version['created_at']}"
        )


def _show(body: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        _print(body)


Name = Annotated[str, typer.Argument(metavar="NAME", help="The deployment's name, e.g. cams.")]
Percent = typer.Option(
    100,
    min=1,
    max=100,
    metavar="PERCENT",
    help="Stage it: only this share of the devices (stable by device id) gets it; "
    "`widen` gives it to the rest.",
)


@app.command("promote")
def promote(
    name: Name,
    job_id: Annotated[str, typer.Argument(help="A succeeded job (job_...).")],
    percent: int = Percent,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Make JOB_ID's model the current version of deployment NAME (created if needed), or,
    with --percent below 100, stage it to that share of NAME's devices."""
    payload = {"job_id": job_id, "percent": percent}  # 100 (the default): every device
    _show(_request(server, token, "PUT", f"/v1/deployments/{name}", json=payload), as_json)


@app.command("widen")
def widen(
    name: Name,
    percent: int = typer.Option(
        100,
        min=1,
        max=100,
        metavar="PERCENT",
        help="Share of devices that get the staged version (100: all).",
    ),
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Give NAME's staged version to more devices; at 100% it becomes the current version."""
    body = _request(
        server, token, "POST", f"/v1/deployments/{name}/widen", json={"percent": percent}
    )
    _show(body, as_json)


@app.command("show")
def show(
    name: Name, server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
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
        for variant in manifest.get("variants") or []:
            if variant.get("name") != "fp32":  # the fp32 model is the one printed above
                typer.echo(f"  {variant['name']:<8} {_variant_line(variant)}")


def _variant_line(variant: dict[str, Any]) -> str:
    """Another published form of the model: where it is, its test accuracy and what it
    bought over fp32 on the worker's CPU."""
    facts = [f"{variant['url']}  ({variant['size']} bytes)"]
    accuracy, speed = variant.get("accuracy"), variant.get("speed_over_fp32")
    if isinstance(accuracy, int | float):
        facts.append(f"accuracy {100 * accuracy:.1f}%")
    if isinstance(speed, int | float):
        facts.append(f"{speed:.2f}x fp32's speed on the worker")
    return "  ".join(facts)


@app.command("list")
def list_deployments(
    server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
) -> None:
    """List deployments with their current version."""
    body = _request(server, token, "GET", "/v1/deployments")
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for d in body["data"]:
        typer.echo(f"{d['name']}  version {d['current_version']}  job {d['current_job_id']}")


@app.command("rollback")
def rollback(
    name: Name,
    version: int | None = typer.Option(
        None, metavar="VERSION", help="Version to return to (default: previous)."
    ),
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Point NAME back at an earlier version. During a staged rollout: end the stage, and
    every device returns to the current version."""
    payload = {"version": version} if version is not None else None
    _show(
        _request(server, token, "POST", f"/v1/deployments/{name}/rollback", json=payload), as_json
    )


def _number(value: Any, unit: str = "", digits: int = 2) -> str:
    return f"{value:.{digits}f}{unit}" if isinstance(value, int | float) else "-"


@app.command("fleet")
def fleet(
    name: Name, server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
) -> None:
    """Which devices of NAME run what: devices per version, online/stale, median on-device
    speedup and latency, failed installs."""
    body = _request(server, token, "GET", f"/v1/deployments/{name}/fleet")
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    rollout = body["rollout"]
    staged = f", v{rollout['version']} staged to {rollout['percent']}%" if rollout else ""
    typer.echo(f"{name}: current v{body['current_version']}{staged}")
    typer.echo(
        f"devices {body['devices']}: {body['online']} online, {body['stale']} stale, "
        f"{body['never_seen']} never seen ({body['revoked']} revoked)"
    )
    typer.echo(
        f"  {'version':<9}{'role':<9}{'assigned':>9}{'running':>9}{'online':>8}{'stale':>7}"
        f"{'speedup':>9}{'p50':>10}{'p99':>10}{'failed':>8}"
    )
    for v in body["versions"]:
        typer.echo(
            f"  v{v['version']:<8}{v['role'] or '':<9}{v['assigned']:>9}{v['running']:>9}"
            f"{v['online']:>8}{v['stale']:>7}{_number(v['median_speedup'], 'x'):>9}"
            f"{_number(v['median_latency_p50_ms'], ' ms'):>10}"
            f"{_number(v['median_latency_p99_ms'], ' ms'):>10}{v['install_failures']:>8}"
        )
    for failed in body["failed_installs"]:
        typer.echo(
            f"  failed install: {failed['name']} ({failed['device_id']}) v{failed['version']} "
            f"at {failed['stage']}: {failed['error']}"
        )
