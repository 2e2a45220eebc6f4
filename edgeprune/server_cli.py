"""`edgeprune serve` and `edgeprune api`: start the service (process orchestration lives in
edgeprune.launch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service.cli.options import LogLevelName, log_level_option

Port = Annotated[int, typer.Option(min=1, max=65535, metavar="PORT", help="TCP port to listen on.")]
Host = Annotated[str, typer.Option(metavar="HOST", help="Interface to listen on.")]


def serve(
    data_dir: Annotated[
        Path,
        typer.Option(
            envvar="EDGEPRUNE_DATA_DIR",
            metavar="DIR",
            help="Folder of the database, broker and artifacts.",
        ),
    ] = Path("edgeprune-data"),
    host: Host = "127.0.0.1",
    port: Port = 8000,
    log_level: Annotated[LogLevelName, log_level_option("API and worker log lines")] = "info",
) -> None:
    """Run everything on this machine: API + workers + SQLite, under one data dir.

    Prints the URL, and on the first start the admin token (also saved to
    <data dir>/admin-token). Ctrl-C stops everything.
    """
    from edgeprune.launch import serve as run_serve

    raise typer.Exit(run_serve(data_dir, host, port, log_level=log_level, echo=typer.echo))


def api(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    log_level: Annotated[LogLevelName, log_level_option("API log lines")] = "info",
) -> None:
    """Run the API alone, configured by EDGEPRUNE_* variables (database, broker, artifacts)."""
    from edgeprune.launch import run_api

    run_api(host, port, log_level=log_level)
