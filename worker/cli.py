"""`edgeprune worker`: a Celery worker configured from EDGEPRUNE_* environment variables.

Module-level imports are typer only: Celery, SQLAlchemy and torch load inside the command.
"""

from __future__ import annotations

from typing import Annotated, Literal

import typer

LogLevelName = Literal["debug", "info", "warning", "error", "critical"]  # as `edgeprune serve`


def worker(
    queues: Annotated[
        str,
        typer.Option(
            metavar="QUEUE,...",
            help="Comma-separated queues to consume: gpu (jobs), inspect (uploads).",
        ),
    ] = "gpu,inspect",
    concurrency: Annotated[
        int, typer.Option(min=1, metavar="N", help="Processes; one per GPU is the rule.")
    ] = 1,
    name: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Celery node name (default: FIRST_QUEUE@HOST)."),
    ] = None,
    gpu: Annotated[
        int | None,
        typer.Option(
            min=0,
            metavar="INDEX",
            help="Pin this worker to one GPU of the host (sets CUDA_VISIBLE_DEVICES; the node is "
            "named gpuINDEX@HOST). Run one worker per GPU. Not needed in a container that is "
            "given one GPU.",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        LogLevelName,
        typer.Option("--log-level", case_sensitive=False, help="Least severe log lines shown."),
    ] = "info",
    old_loglevel: Annotated[
        LogLevelName | None,
        typer.Option("--loglevel", case_sensitive=False, hidden=True, help="Old --log-level."),
    ] = None,
) -> None:
    """Run a worker: applies DB migrations, then consumes jobs until stopped (SIGTERM/Ctrl-C)."""
    from infra.supervisor_watch import follow_supervisor

    follow_supervisor()  # a child of `edgeprune serve` ends with it
    if gpu is not None:  # before anything imports torch
        from worker.gpus import pin_to_gpu

        name = pin_to_gpu(gpu, name)
    from worker.main import run_worker

    if old_loglevel is not None:
        typer.echo("note: --loglevel is now --log-level (the old name still works)", err=True)
        log_level = old_loglevel
    run_worker(
        queues=[q.strip() for q in queues.split(",") if q.strip()],
        concurrency=concurrency,
        name=name,
        loglevel=log_level.upper(),
    )


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)
