"""`edgeprune pretrain`: train an unpruned model from scratch and save its checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeprune.json_output import echo_json
from pruning.cli.options import (
    ZOO_NAMES,
    AugmentOption,
    BatchSize,
    Device,
    JsonResult,
    Seed,
    fail,
)


def pretrain(
    arch: Annotated[str, typer.Option(metavar="ARCH", help=f"A zoo architecture: {ZOO_NAMES}.")],
    out: Annotated[
        Path, typer.Option(metavar="FILE", help="Checkpoint to write (.pt or .safetensors).")
    ],
    data: Annotated[
        str, typer.Option(metavar="SOURCE", help="Same sources as compress.")
    ] = "builtin:digits",
    epochs: Annotated[int, typer.Option(min=1, metavar="N", help="Training epochs.")] = 10,
    width_mult: Annotated[float, typer.Option(metavar="X", help="Width multiplier.")] = 1.0,
    batch_size: BatchSize = 64,
    lr: Annotated[float, typer.Option(metavar="LR", help="Learning rate.")] = 0.05,
    augment: AugmentOption = None,
    seed: Seed = 0,
    device: Device = "auto",
    as_json: JsonResult = False,
) -> None:
    """Train a model from scratch and save a checkpoint (for demos and tests).

    With --json, stdout is one object: {"checkpoint", "arch", "structure", "accuracy",
    "loss", "epochs": [{"epoch", "loss", "accuracy"}, ...]} (test split; epoch lines go to
    stderr).
    """
    from pruning.data import DataError
    from pruning.models.registry import available_models
    from pruning.pretrain import pretrain as run_pretrain

    if arch not in available_models():
        raise fail(f"unknown arch {arch!r}; known: {', '.join(available_models())}")
    history: list[dict[str, float]] = []

    def on_epoch(epoch: int, loss: float, accuracy: float) -> None:
        history.append({"epoch": epoch, "loss": loss, "accuracy": accuracy})
        line = f"epoch {epoch}/{epochs}: test loss {loss:.4f}, accuracy {accuracy:.4f}"
        typer.echo(line, err=as_json)

    try:
        result = run_pretrain(
            arch=arch,
            data=data,
            epochs=epochs,
            out=out,
            width_mult=width_mult,
            batch_size=batch_size,
            lr=lr,
            augment=augment,
            seed=seed,
            device=device,
            on_epoch=on_epoch,
        )
    except (DataError, ValueError) as exc:
        raise fail(str(exc)) from None
    if as_json:
        echo_json(
            {
                "checkpoint": str(result.path),
                "arch": result.spec.arch,
                "structure": result.spec.to_json(),
                "accuracy": result.accuracy,
                "loss": result.loss,
                "epochs": history,
            }
        )
    else:
        typer.echo(f"saved {result.path} (accuracy {result.accuracy:.4f})")
