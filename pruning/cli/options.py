"""What `edgeprune compress` and `edgeprune pretrain` share: exit codes, options, and the
one-line error (typer and the standard library only)."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeprune.contracts.architectures import ZOO
from edgeprune.contracts.dims import DimsError, parse_dims
from edgeprune.contracts.exit_codes import ExitCode
from edgeprune.json_output import json_option

# Errors a user can cause with their arguments or files: one line, exit code 2.
USER_ERROR_EXIT = ExitCode.USAGE
# Training stopped making progress (a native kernel hung): see docs/cpu-kernels.md.
STALLED_EXIT = ExitCode.STALLED
ZOO_NAMES = ", ".join(ZOO)

# The default follows the kind of data (pruning.data.augmentation); compress and pretrain alike.
AugmentOption = Annotated[
    bool | None,
    typer.Option(
        help="Shift-and-mirror augmentation (default: on for images: image folders, CIFAR, "
        "8-bit .npz, builtin:photos; off for builtin:digits and float .npz arrays).",
        show_default=False,
    ),
]
JsonResult = Annotated[
    bool,
    json_option(
        "Print the result as one JSON object on stdout instead of lines (progress and "
        "messages go to stderr)."
    ),
]
Device = Annotated[str, typer.Option(metavar="DEVICE", help="auto, cpu, cuda or cuda:N.")]
Seed = Annotated[int, typer.Option(metavar="N", help="Random seed, for a repeatable run.")]
BatchSize = Annotated[int, typer.Option(min=1, metavar="N", help="Samples per training step.")]


def fail(message: str) -> typer.Exit:
    """A user's mistake: one line on stderr; raise what this returns."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(USER_ERROR_EXIT)


def parse_size(text: str | None) -> tuple[int, int] | None:
    """--input-size H,W (a note on stderr for the older HxW spelling)."""
    if text is None:
        return None
    try:
        (h, w), note = parse_dims(text, option="--input-size", names="H,W")
    except DimsError as exc:
        raise fail(str(exc)) from None
    if note:
        typer.echo(f"note: {note}", err=True)
    return h, w
