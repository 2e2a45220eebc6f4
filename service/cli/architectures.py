"""`edgeprune architectures`: what an upload's --arch may name on this server."""

from __future__ import annotations

import json

import typer

from service.cli.options import DEFAULT_SERVER, JsonOutput, Server, Token


def list_architectures(
    server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
) -> None:
    """List the architectures the server's workers can build: the zoo, then packages
    installed on the workers under the edgeprune.models entry points."""
    from service.cli.client import request_json

    body = request_json(server, token, "GET", "/v1/architectures")
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for a in body["data"]:
        where = f"  (reported by {a['reported_by']})" if a["source"] == "installed" else ""
        typer.echo(f"{a['name']:<20}  {a['source']}{where}")
