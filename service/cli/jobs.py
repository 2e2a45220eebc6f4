"""`edgeprune jobs submit|list|show|watch|cancel`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from edgeprune.contracts.exit_codes import ExitCode
from edgeprune.contracts.jobs import JobState
from edgeprune.contracts.limits import DistillPhases, Quantize, TargetFitChoice
from edgeprune.json_output import json_option
from service.cli.options import DEFAULT_SERVER, EXIT_CODES, JsonOutput, Server, Token

app = typer.Typer(help="Submit and follow compression jobs.", epilog=EXIT_CODES)


def parse_target(text: str) -> dict[str, Any]:
    """'flops=0.5' -> {"metric": "flops", "reduction": 0.5}; the server checks the bounds."""
    metric, sep, value = text.partition("=")
    try:
        reduction = float(value)
    except ValueError:
        reduction = None
    if not sep or not metric.strip() or reduction is None:
        raise typer.BadParameter("use METRIC=REDUCTION, e.g. flops=0.5, params=0.3, channels=0.5")
    return {"metric": metric.strip(), "reduction": reduction}


def _request(server: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    from service.cli.client import request_json  # httpx loads only when a command runs

    return request_json(server, token, method, path, **kwargs)


def _line(job: dict[str, Any]) -> str:
    target = job["config"].get("target", {})
    phase = job["phase"] or "-"
    return (
        f"{job['id']}  {job['state']:<9}  {phase:<18}  {job['progress'] * 100:5.1f}%  "
        f"{target.get('metric')}={target.get('reduction')}"
    )


@app.command("submit")
def submit(
    model: Annotated[str, typer.Option(metavar="ID", help="Model id (mdl_...).")],
    dataset: Annotated[str, typer.Option(metavar="ID", help="Dataset id (dst_...).")],
    target: Annotated[
        str,
        typer.Option(
            metavar="METRIC=R",
            help="What to cut and by how much: flops=0.5 (FLOPs (MACs)), params=0.5 or "
            "channels=0.5; R between 0 and 1.",
        ),
    ],
    structure_epochs: Annotated[
        int,
        typer.Option(metavar="N", help="Structure-learning epochs; 0 prunes once, no learning."),
    ] = 10,
    finetune_epochs: Annotated[
        int, typer.Option(metavar="N", help="Weight-learning epochs (>= 1).")
    ] = 10,
    batch_size: Annotated[
        int | None, typer.Option(metavar="N", help="Samples per training step (server: 64).")
    ] = None,
    lr: Annotated[
        float | None, typer.Option(metavar="LR", help="Learning rate (server default: 0.01).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(metavar="N", help="Random seed, for a repeatable run (0).")
    ] = None,
    channel_multiple: Annotated[
        int | None,
        typer.Option(metavar="N", help="Keep widths multiples of this (e.g. 8 for CPUs)."),
    ] = None,
    distill: Annotated[
        float | None,
        typer.Option(
            metavar="W",
            help="Weight (0..1) of distilling the checkpoint in training (server: 0; "
            "0.5 suits a checkpoint that has finished training).",
        ),
    ] = None,
    distill_phases: Annotated[
        DistillPhases | None,
        typer.Option(
            help="With --distill: weights (weight learning only) or both (structure learning "
            "too; the server's default).",
        ),
    ] = None,
    target_fit: Annotated[
        TargetFitChoice | None,
        typer.Option(
            help="How a flops/params target is met: scale (the server's default) or "
            "cost_aware (favours units where a channel is cheap: MobileNet-style networks).",
        ),
    ] = None,
    augment: Annotated[
        bool | None,
        typer.Option(
            help="Shift-and-mirror augmentation (default: on for images, off for float .npz "
            "arrays and digits)."
        ),
    ] = None,
    quantize: Annotated[
        Quantize | None,
        typer.Option(
            help="none (default) or int8: also publish model.int8.onnx when it is accurate "
            "enough (see --int8-max-drop)."
        ),
    ] = None,
    int8_max_drop: Annotated[
        float | None,
        typer.Option(metavar="DROP", help="Largest accuracy drop (0..1) INT8 may cost (0.01)."),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Promote the result to this deployment on success."),
    ] = None,
    rollout_percent: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=100,
            metavar="PERCENT",
            help="Stage that promotion to this share of the deployment's devices (widen or "
            "roll back with `deployments`); its first version goes to all.",
        ),
    ] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Queue a compression job and print its id (and, on stderr, any note from the server,
    such as the dataset's images being resized to the model's input)."""
    body: dict[str, Any] = {
        "model_id": model,
        "dataset_id": dataset,
        "target": parse_target(target),
        "structure_epochs": structure_epochs,
        "finetune_epochs": finetune_epochs,
    }
    optional = {
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "channel_multiple": channel_multiple,
        "distill": distill,
        "distill_phases": distill_phases,
        "target_fit": target_fit,
        "augment": augment,
        "quantize": quantize,
        "int8_max_drop": int8_max_drop,
        "deployment": deployment,
        "rollout_percent": rollout_percent,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    job = _request(server, token, "POST", "/v1/jobs", json=body)
    if not as_json:
        # What the server wants the submitter to know, e.g. that the images will be resized.
        for note in job.get("notes") or []:
            typer.echo(f"note: {note}", err=True)
    typer.echo(json.dumps(job, indent=2) if as_json else job["id"])


@app.command("list")
def list_jobs(
    state: Annotated[JobState | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=500, metavar="N", help="Show at most this many.")
    ] = 20,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """List jobs, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state.value
    body = _request(server, token, "GET", "/v1/jobs", params=params)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for job in body["data"]:
        typer.echo(_line(job))


JobId = Annotated[str, typer.Argument(help="The job's id (job_...).")]


@app.command("show")
def show(
    job_id: JobId, server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
) -> None:
    """Show one job: state, phase, progress, its inputs and latest metrics."""
    job = _request(server, token, "GET", f"/v1/jobs/{job_id}")
    if as_json:
        typer.echo(json.dumps(job, indent=2))
        return
    typer.echo(_line(job))
    typer.echo(f"  model {job['model_id']}  dataset {job['dataset_id']}")
    if job.get("deployment"):
        typer.echo(f"  deployment {job['deployment']}")
    for key, value in sorted((job.get("metrics") or {}).items()):
        shown = f"{value:.4g}" if isinstance(value, float) else value
        typer.echo(f"  {key} {shown}")
    if job.get("error_message"):
        typer.echo(f"  error {job.get('error_type')}: {job['error_message']}")


@app.command("cancel")
def cancel(
    job_id: JobId, server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
) -> None:
    """Cancel a job (a running one stops within one training step)."""
    job = _request(server, token, "POST", f"/v1/jobs/{job_id}/cancel")
    if as_json:
        typer.echo(json.dumps(job, indent=2))
        return
    note = " (cancel requested)" if job["state"] == JobState.RUNNING else ""
    typer.echo(f"{job['id']}  {job['state']}{note}")


@app.command("watch")
def watch(
    job_id: JobId,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: Annotated[
        bool,
        json_option(
            "Print JSON lines instead of the bar: every event of the job from its start as "
            '{"id", "event", "data"}, then the finished job as {"event": "job", "data": '
            "<as jobs show --json>}; `| tail -n 1` keeps the result."
        ),
    ] = False,
) -> None:
    """Follow a job live until it ends. Exit code 0 if it succeeded, 1 if it failed or was
    canceled (`edgeprune jobs --help` lists the other codes)."""
    from service.cli.client import run
    from service.cli.watch import watch_job

    final = run(lambda: watch_job(server, token, job_id, as_json=as_json))
    if final.get("state") != JobState.SUCCEEDED:
        raise typer.Exit(ExitCode.FAILED)
