"""`edgeprune architectures`: what an upload's --arch may name on this server."""

from __future__ import annotations

import json
from typing import Any

import typer

from service.cli.options import DEFAULT_SERVER, JsonOutput, Server, Token


def list_architectures(
    server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
) -> None:
    """List the architectures the server's workers can build: the zoo, then packages
    installed on the workers under the edgeprune.models entry points."""
    from service.cli.client import api_client, check, run

    def fetch() -> Any:
        with api_client(server, token) as client:
            return check(client.get("/v1/architectures"))

    body = run(fetch)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for a in body["data"]:
        where = f"  (reported by {a['reported_by']})" if a["source"] == "installed" else ""
        typer.echo(f"{a['name']:<20}  {a['source']}{where}")
