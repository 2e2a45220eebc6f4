"""`edgeprune serve` and `edgeprune api`: start the service (process orchestration lives in
service.launch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def serve(
    data_dir: Annotated[
        Path, typer.Option(envvar="EDGEPRUNE_DATA_DIR", help="Database, broker and artifacts.")
    ] = Path("edgeprune-data"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn/Celery log level.")] = "info",
) -> None:
    """Run everything on this machine: API + workers + SQLite, under one data dir.

    Prints the URL, and on the first start the admin token (also saved to
    <data dir>/admin-token). Ctrl-C stops everything.
    """
    from service.launch import serve as run_serve

    raise typer.Exit(run_serve(data_dir, host, port, log_level=log_level, echo=typer.echo))


def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the API alone, configured by EDGEPRUNE_* variables (database, broker, artifacts)."""
    from service.launch import run_api

    run_api(host, port, log_level=log_level)
