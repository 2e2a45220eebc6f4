"""`edgeprune jobs submit|list|show|watch|cancel`."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

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
    model: Annotated[str, typer.Option(help="Model id (mdl_...).")],
    dataset: Annotated[str, typer.Option(help="Dataset id (dst_...).")],
    target: Annotated[str, typer.Option(help="METRIC=REDUCTION, e.g. flops=0.5.")],
    structure_epochs: Annotated[int, typer.Option(help="0 = prune once, no learning.")] = 10,
    finetune_epochs: Annotated[int, typer.Option(help="Weight-learning epochs (>= 1).")] = 10,
    batch_size: Annotated[int | None, typer.Option(help="Default: the server's.")] = None,
    lr: Annotated[float | None, typer.Option(help="Default: the server's.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    channel_multiple: Annotated[
        int | None, typer.Option(help="Keep widths multiples of this (e.g. 8 for CPUs).")
    ] = None,
    augment: Annotated[
        bool | None,
        typer.Option(
            help="Shift-and-mirror augmentation (default: on for images, off for float .npz "
            "arrays and digits)."
        ),
    ] = None,
    quantize: Annotated[
        str | None,
        typer.Option(
            help="none (default) or int8: also publish model.int8.onnx when it is accurate "
            "enough (see --int8-max-drop)."
        ),
    ] = None,
    int8_max_drop: Annotated[
        float | None, typer.Option(help="Largest accuracy drop (0..1) INT8 may cost (0.01).")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option(help="Promote the result to this deployment on success.")
    ] = None,
    rollout_percent: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=100,
            help="Stage that promotion to this share of the deployment's devices (widen or "
            "roll back with `deployments`); its first version goes to all.",
        ),
    ] = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Queue a compression job and print its id."""
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
        "augment": augment,
        "quantize": quantize,
        "int8_max_drop": int8_max_drop,
        "deployment": deployment,
        "rollout_percent": rollout_percent,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    job = _request(server, token, "POST", "/v1/jobs", json=body)
    typer.echo(json.dumps(job, indent=2) if as_json else job["id"])


@app.command("list")
def list_jobs(
    state: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """List jobs, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if state:
        params["state"] = state
    body = _request(server, token, "GET", "/v1/jobs", params=params)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for job in body["data"]:
        typer.echo(_line(job))


@app.command("show")
def show(job_id: str, server: Server = DEFAULT_SERVER, token: Token = None) -> None:
    """Print one job as JSON."""
    typer.echo(json.dumps(_request(server, token, "GET", f"/v1/jobs/{job_id}"), indent=2))


@app.command("cancel")
def cancel(job_id: str, server: Server = DEFAULT_SERVER, token: Token = None) -> None:
    """Cancel a job (a running one stops within one training step)."""
    job = _request(server, token, "POST", f"/v1/jobs/{job_id}/cancel")
    note = " (cancel requested)" if job["state"] == "running" else ""
    typer.echo(f"{job['id']}  {job['state']}{note}")


@app.command("watch")
def watch(
    job_id: str,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
) -> None:
    """Follow a job live until it ends. Exit code 0 if it succeeded, 1 if it failed or was
    canceled (`edgeprune jobs --help` lists the other codes)."""
    from service.cli.client import run
    from service.cli.watch import watch_job

    final = run(lambda: watch_job(server, token, job_id))
    if final.get("state") != "succeeded":
        raise typer.Exit(1)
