"""`edgeprune models upload|list` and `edgeprune datasets upload|list`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Annotated, Any

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
# How often a model upload says how far it is while the request is in flight.
PROGRESS_EVERY_S = 2.0


class _CountingFile:
    """The file httpx streams, counting the bytes read from it (the upload's progress)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.sent = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        self.sent += len(chunk)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:  # httpx rewinds before sending
        self.sent = self._fh.seek(offset, whence)
        return self.sent

    def __getattr__(self, name: str) -> Any:  # tell, fileno: httpx sizes the file
        return getattr(self._fh, name)


def _upload(
    server: str,
    token: str | None,
    path: Path,
    route: str,
    fields: dict[str, str],
    fh: Any = None,
) -> Any:
    from service.cli.client import api_client, check

    with api_client(server, token, timeout=UPLOAD_TIMEOUT_S) as client, path.open("rb") as own:
        # httpx streams the file from disk; it is never read into memory whole.
        sent = fh if fh is not None else own
        return check(client.post(route, files={"file": (path.name, sent)}, data=fields))


def _upload_with_progress(
    server: str, token: str | None, path: Path, fields: dict[str, str]
) -> Any:
    """POST the checkpoint in a thread and say every PROGRESS_EVERY_S how far it is: the
    bytes sent, then how long a worker has been checking it."""
    result: dict[str, Any] = {}
    total = path.stat().st_size
    with path.open("rb") as raw:
        counting = _CountingFile(raw)

        def post() -> None:
            try:
                result["body"] = _upload(server, token, path, "/v1/models", fields, counting)
            except BaseException as exc:  # re-raised in the caller's thread
                result["error"] = exc

        thread = threading.Thread(target=post, daemon=True)
        started = time.monotonic()
        checking_since: float | None = None
        thread.start()
        while True:
            thread.join(PROGRESS_EVERY_S)
            if not thread.is_alive():
                break
            now = time.monotonic()
            if counting.sent < total:
                typer.echo(
                    f"  sent {counting.sent / 1e6:.1f} of {total / 1e6:.1f} MB "
                    f"({now - started:.0f} s)",
                    err=True,
                )
                continue
            checking_since = checking_since or now
            typer.echo(
                f"  uploaded; a worker is checking it ({now - checking_since:.0f} s)", err=True
            )
    if "error" in result:
        raise result["error"]
    return result["body"]


def _show(body: Any, as_json: bool, line: str) -> None:
    typer.echo(json.dumps(body, indent=2) if as_json else line)


def _detected_note(body: dict[str, Any], fields: dict[str, str]) -> str | None:
    """Which of arch, classes and input shape the inspection found rather than was given;
    None when all three were given."""
    found = [
        text
        for key, text in (
            ("arch", f"arch {body['arch']}"),
            ("num_classes", f"{body['num_classes']} classes"),
            ("input_shape", f"input {'x'.join(str(d) for d in body['input_shape'])}"),
        )
        if key not in fields
    ]
    if not found:
        return None
    note = "detected from the checkpoint: " + ", ".join(found)
    if "input_shape" not in fields:
        note += (
            " (its height and width: the checkpoint's record or the architecture's usual "
            "input; pass --input-shape C,H,W if your data differs)"
        )
    return note


@models_app.command("upload")
def upload_model(
    file: ExistingFile,
    arch: Annotated[
        str | None,
        typer.Option(
            metavar="ARCH",
            help=f"The network the checkpoint is for: {', '.join(ZOO)}, or one the server's "
            "workers have installed (`edgeprune architectures` lists them). Needed only for "
            "a plain state dict: EdgePrune checkpoints record it.",
        ),
    ] = None,
    num_classes: Annotated[
        int | None,
        typer.Option(
            min=2,
            metavar="N",
            help="Classes of the checkpoint's head (default: read from the checkpoint).",
        ),
    ] = None,
    input_shape: Annotated[
        str | None,
        typer.Option(
            metavar="C,H,W",
            help="Shape of one input, e.g. 1,32,32 (default: the checkpoint's channels and "
            "recorded size, else the architecture's usual size: 32x32 for the CIFAR-style "
            "nets, 224x224 for resnet18/34/50 and mobilenet_v2_imagenet).",
        ),
    ] = None,
    name: Name = None,
    server: Server = DEFAULT_SERVER,
    token: Token = None,
    as_json: JsonOutput = False,
) -> None:
    """Upload a .pt/.pth/.safetensors checkpoint; once a worker has checked it, prints its id
    and what it found (arch, classes, input shape)."""
    from service.cli.client import run

    fields: dict[str, str] = {}
    if input_shape is not None:
        try:
            dims, note = parse_dims(input_shape, option="--input-shape", names="C,H,W")
        except DimsError as exc:
            raise typer.BadParameter(str(exc)) from None
        if note:
            typer.echo(f"note: {note}", err=True)
        fields["input_shape"] = ",".join(str(d) for d in dims)
    if arch is not None:
        fields["arch"] = arch
    if num_classes is not None:
        fields["num_classes"] = str(num_classes)
    if name:
        fields["name"] = name
    # The answer waits for a worker to load the weights (up to the server's inspect_wait_s):
    # say so, and how far it is, or the wait looks like a hang.
    size = file.stat().st_size / 1e6
    into = f"loads into {arch}" if arch else "loads (reading its arch, classes and input)"
    typer.echo(
        f"uploading {file.name} ({size:.1f} MB); a worker then checks that it {into}, "
        "which can take a few seconds...",
        err=True,
    )
    body = run(lambda: _upload_with_progress(server, token, file, fields))
    if body["status"] == "pending":
        line = f"{body['id']}  pending (not inspected yet; see `edgeprune models list`)"
    else:
        shape = "x".join(str(d) for d in body["input_shape"])
        line = (
            f"{body['id']}  {body['arch']}  {body['num_classes']} classes  input {shape}  "
            f"params {body['params']:,}  FLOPs (MACs) {body['flops']:,}"
        )
        reachable = (body.get("max_reduction") or {}).get("flops")
        if reachable is not None:  # what `jobs submit --target flops=R` may ask for at most
            line += f"  at most flops={reachable:.3f}"
        note = _detected_note(body, fields)
        if note and not as_json:
            typer.echo(note, err=True)
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
        typer.echo(f"{m['id']}  {m['status']:<7}  {m['arch'] or '?':<12}  {m['name']}")


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
