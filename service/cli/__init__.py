"""The operator CLI: `edgeprune token|models|architectures|datasets|jobs|deployments|
devices`.

Only typer and the standard library load at start; httpx, rich and the service modules are
imported inside the commands, so `edgeprune --help` is instant. HTTP commands talk to
`--server` (EDGEPRUNE_SERVER, default http://127.0.0.1:8000) with `--token` (EDGEPRUNE_TOKEN,
default: the admin token `edgeprune serve` wrote to <data dir>/admin-token). Their exit codes
are listed in edgeprune/contracts/exit_codes.py: 3 unreachable, 4 auth, 5 not found, 6 refused,
7 server error, 1 for a watched job that failed. `serve` and `api` live in the composition
root (edgeprune/server_cli.py), which starts the API and the workers together.
"""

from __future__ import annotations

import typer

from service.cli import architectures, deployments, devices, jobs, tokens, uploads


def register(app: typer.Typer) -> None:
    app.add_typer(tokens.app, name="token")
    app.add_typer(uploads.models_app, name="models")
    app.command("architectures")(architectures.list_architectures)
    app.add_typer(uploads.datasets_app, name="datasets")
    app.add_typer(jobs.app, name="jobs")
    app.add_typer(deployments.app, name="deployments")
    app.add_typer(devices.app, name="devices")
