"""`edgeprune worker`: a Celery worker configured from EDGEPRUNE_* environment variables.

Module-level imports are typer only: Celery, SQLAlchemy and torch load inside the command.
"""

from __future__ import annotations

from typing import Annotated

import typer


def worker(
    queues: Annotated[
        str, typer.Option(help="Comma-separated queues to consume: gpu (jobs), inspect (uploads).")
    ] = "gpu,inspect",
    concurrency: Annotated[
        int, typer.Option(min=1, help="Processes; one per GPU is the rule.")
    ] = 1,
    name: Annotated[
        str | None, typer.Option(help="Celery node name (default: <first queue>@<host>).")
    ] = None,
    loglevel: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING ...")] = "INFO",
) -> None:
    """Run a worker: applies DB migrations, then consumes jobs until stopped (SIGTERM/Ctrl-C)."""
    from worker.main import run_worker

    run_worker(
        queues=[q.strip() for q in queues.split(",") if q.strip()],
        concurrency=concurrency,
        name=name,
        loglevel=loglevel,
    )


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
