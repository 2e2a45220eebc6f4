"""`edgeprune models upload|list` and `edgeprune datasets upload|list`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from edgeprune.contracts.architectures import ZOO
from edgeprune.contracts.dims import DimsError, parse_dims
from service.cli.options import DEFAULT_SERVER, EXIT_CODES, JsonOutput, Server, Token

models_app = typer.Typer(help="Upload and list checkpoints.", epilog=EXIT_CODES)
datasets_app = typer.Typer(help="Upload and list edge datasets.", epilog=EXIT_CODES)

ExistingFile = Annotated[
    Path,
    typer.Argument(
        exists=True, dir_okay=False, readable=True, metavar="FILE", help="File to upload."
    ),
]
Name = Annotated[
    str | None, typer.Option(metavar="NAME", help="Display name (default: the file's name).")
]
# An upload may wait for the server to inspect it (inspect_wait_s, 60 s by default).
UPLOAD_TIMEOUT_S = 600.0


def _upload(server: str, token: str | None, path: Path, route: str, fields: dict[str, str]) -> Any:
    from service.cli.client import api_client, check

    with api_client(server, token, timeout=UPLOAD_TIMEOUT_S) as client, path.open("rb") as fh:
        # httpx streams the file from disk; it is never read into memory whole.
        return check(client.post(route, files={"file": (path.name, fh)}, data=fields))


def _show(body: Any, as_json: bool, line: str) -> None:
    typer.echo(json.dumps(body, indent=2) if as_json else line)


@models_app.command("upload")
def upload_model(
    file: ExistingFile,
    arch: Annotated[
        str,
        typer.Option(
            metavar="ARCH",
            help=f"The network the checkpoint is for: {', '.join(ZOO)}, or one the server's "
            "workers have installed (`edgeprune architectures` lists them).",
        ),
    ],
    num_classes: Annotated[
        int, typer.Option(min=2, metavar="N", help="Classes of the checkpoint's head.")
    ],
    input_shape: Annotated[
        str, typer.Option(metavar="C,H,W", help="Shape of one input, e.g. 1,32,32.")
    ],
    name: Name = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Upload a .pt/.pth/.safetensors checkpoint; prints its id once a worker has checked it."""
    from service.cli.client import run

    try:
        dims, note = parse_dims(input_shape, option="--input-shape", names="C,H,W")
    except DimsError as exc:
        raise typer.BadParameter(str(exc)) from None
    if note:
        typer.echo(f"note: {note}", err=True)
    shape = ",".join(str(d) for d in dims)
    fields = {"arch": arch, "num_classes": str(num_classes), "input_shape": shape}
    if name:
        fields["name"] = name
    # The answer waits for a worker to load the weights (up to the server's inspect_wait_s):
    # say so, or the wait looks like a hang.
    size = file.stat().st_size / 1e6
    typer.echo(
        f"uploading {file.name} ({size:.1f} MB); a worker then checks that it loads into "
        f"{arch} (this can take a few seconds)...",
        err=True,
    )
    body = run(lambda: _upload(server, token, file, "/v1/models", fields))
    if body["status"] == "pending":
        line = f"{body['id']}  pending (not inspected yet; see `edgeprune models list`)"
    else:
        line = (
            f"{body['id']}  {body['arch']}  params {body['params']:,}  "
            f"FLOPs (MACs) {body['flops']:,}"
        )
    _show(body, as_json, line)


@models_app.command("list")
def list_models(
    server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
) -> None:
    """List uploaded checkpoints, newest first."""
    from service.cli.client import api_client, check, run

    def fetch() -> Any:
        with api_client(server, token) as client:
            return check(client.get("/v1/models"))

    body = run(fetch)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for m in body["data"]:
        typer.echo(f"{m['id']}  {m['status']:<7}  {m['arch']:<12}  {m['name']}")


@datasets_app.command("upload")
def upload_dataset(
    file: ExistingFile,
    name: Name = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Upload a .npz (x, y) or a .zip/.tar.gz ImageFolder tree; prints its id."""
    from service.cli.client import run

    body = run(lambda: _upload(server, token, file, "/v1/datasets", {"name": name} if name else {}))
    classes = len(body["classes"])
    shape = "x".join(str(d) for d in body["input_shape"])
    _show(
        body, as_json, f"{body['id']}  samples={body['samples']}  classes={classes}  input={shape}"
    )


@datasets_app.command("list")
def list_datasets(
    server: Server = DEFAULT_SERVER, token: Token = None, as_json: JsonOutput = False
) -> None:
    """List uploaded datasets, newest first."""
    from service.cli.client import api_client, check, run

    def fetch() -> Any:
        with api_client(server, token) as client:
            return check(client.get("/v1/datasets"))

    body = run(fetch)
    if as_json:
        typer.echo(json.dumps(body, indent=2))
        return
    for d in body["data"]:
        typer.echo(
            f"{d['id']}  samples={d['samples']:<7}  classes={len(d['classes']):<4}  {d['name']}"
        )
