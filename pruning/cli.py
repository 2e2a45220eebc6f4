"""`edgeprune compress` and `edgeprune pretrain`: the engine without a server.

Module-level imports are typer and the standard library only; torch loads inside commands.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import typer

from edgeprune.contracts.architectures import ZOO
from edgeprune.contracts.dims import DimsError, parse_dims
from edgeprune.contracts.exit_codes import ExitCode

# Errors a user can cause with their arguments or files: one line, exit code 2.
USER_ERROR_EXIT = ExitCode.USAGE
# Training stopped making progress (a native kernel hung): see docs/cpu-kernels.md.
STALLED_EXIT = ExitCode.STALLED
FROM_SCRATCH_LR = 0.1
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


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(USER_ERROR_EXIT)


def _parse_size(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        (h, w), note = parse_dims(text, option="--input-size", names="H,W")
    except DimsError as exc:
        raise _fail(str(exc)) from None
    if note:
        typer.echo(f"note: {note}", err=True)
    return h, w


def compress(
    arch: Annotated[
        str | None,
        typer.Option(
            metavar="ARCH",
            help=f"A zoo architecture ({ZOO_NAMES}) or one installed under the "
            "edgeprune.models entry points.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            metavar="MODULE:CALLABLE",
            help="Your own network: module:callable or path/to/file.py:callable, called with "
            "num_classes= and in_channels=; --checkpoint then holds its state dict.",
            show_default=False,
        ),
    ] = None,
    keep_layer: Annotated[
        list[str] | None,
        typer.Option(
            metavar="MODULE",
            help="A module whose output channels are never pruned (repeatable).",
            show_default=False,
        ),
    ] = None,
    prune_residual: Annotated[
        bool,
        typer.Option(
            "--prune-residual",
            help="Also prune channels tied by residual additions, each tied set as one unit "
            "(default: only channels inside blocks, the paper's policy).",
        ),
    ] = False,
    data: Annotated[
        str,
        typer.Option(
            metavar="SOURCE",
            help="builtin:digits, builtin:photos, a .npz, a CIFAR-10 python folder "
            "or an ImageFolder.",
        ),
    ] = "builtin:digits",
    target: Annotated[
        str,
        typer.Option(
            metavar="METRIC=R",
            help="What to cut and by how much: flops=0.5 (FLOPs (MACs)), params=0.5 or "
            "channels=0.5; R between 0 and 1.",
        ),
    ] = "flops=0.5",
    out: Annotated[Path, typer.Option(metavar="DIR", help="Output folder.")] = Path("out"),
    checkpoint: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help=".pt/.safetensors; omitted: train from scratch."),
    ] = None,
    structure_epochs: Annotated[
        int,
        typer.Option(min=0, metavar="N", help="Structure-learning epochs; 0 prunes once."),
    ] = 10,
    finetune_epochs: Annotated[
        int, typer.Option(min=0, metavar="N", help="Weight-learning epochs.")
    ] = 10,
    batch_size: Annotated[
        int, typer.Option(min=1, metavar="N", help="Samples per training step.")
    ] = 64,
    lr: Annotated[
        float | None,
        typer.Option(
            metavar="LR",
            help="Weight-learning learning rate (default: 0.01 with --checkpoint, 0.1 from "
            "scratch, the paper's setting).",
            show_default=False,
        ),
    ] = None,
    structure_lr: Annotated[
        float | None,
        typer.Option(
            metavar="LR",
            help="Structure-learning learning rate (default: as --lr).",
            show_default=False,
        ),
    ] = None,
    calibration_batches: Annotated[
        int,
        typer.Option(
            min=1, metavar="N", help="Batches that measure the gates' saliency before learning."
        ),
    ] = 50,
    channel_multiple: Annotated[
        int,
        typer.Option(min=1, metavar="N", help="Keep widths multiples of this (8 or 16 suit CPUs)."),
    ] = 1,
    augment: AugmentOption = None,
    width_mult: Annotated[
        float, typer.Option(metavar="X", help="Width multiplier without a checkpoint.")
    ] = 1.0,
    input_size: Annotated[
        str | None, typer.Option(metavar="H,W", help="Resize images to this size, e.g. 32,32.")
    ] = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed, for a repeatable run.")] = 0,
    device: Annotated[
        str, typer.Option(metavar="DEVICE", help="auto, cpu, cuda or cuda:N.")
    ] = "auto",
    precision: Annotated[
        Literal["auto", "fp32", "bf16", "fp16"],
        typer.Option(
            help="Training arithmetic: auto (bf16 on CUDA that has it, fp16 with a gradient "
            "scaler on CUDA that does not, fp32 on the CPU), fp32, bf16 or fp16."
        ),
    ] = "auto",
    quantize: Annotated[
        Literal["none", "int8"],
        typer.Option(
            help="none, or int8: also write model.int8.onnx (onnxruntime static quantization, "
            "calibrated on training samples) unless it loses more than --int8-max-drop."
        ),
    ] = "none",
    int8_max_drop: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0, metavar="DROP", help="Largest accuracy drop (0..1) INT8 may cost."
        ),
    ] = 0.01,
    stall_timeout: Annotated[
        float,
        typer.Option(
            min=1,
            metavar="SECONDS",
            help="Fail when no training step completes for this many seconds.",
        ),
    ] = 900.0,
    data_workers: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=64,
            metavar="N",
            help="Processes that decode image files ahead of training (default: 0 on a CPU, "
            "min(8, cores - 1) on a GPU).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compress a model to a FLOPs (MACs), params or channels target and export ONNX."""
    from pruning.config import CompressConfig, InvalidTarget, Target
    from pruning.models.registry import UnknownArchitecture, available_models, external_builder

    if (arch is None) == (model is None):
        raise _fail("give exactly one of --arch (a known architecture) or --model module:callable")
    name = arch if arch is not None else str(model)
    if arch is not None and ":" in arch:
        raise _fail(f"--arch takes a name; for an import string use --model {arch}")
    if name not in available_models():
        try:
            external_builder(name)
        except UnknownArchitecture as exc:
            raise _fail(str(exc)) from None
    if checkpoint is not None and not checkpoint.is_file():
        raise _fail(f"checkpoint {checkpoint} does not exist")
    # From a checkpoint the weights are already good: a modest rate. From scratch, the
    # paper's 0.1 (a pretrained rate leaves a random network far from converged).
    default_lr = 0.01 if checkpoint is not None else FROM_SCRATCH_LR
    lr = lr if lr is not None else default_lr
    structure_lr = structure_lr if structure_lr is not None else lr
    try:
        config = CompressConfig(
            target=Target.parse(target),
            structure_epochs=structure_epochs,
            finetune_epochs=finetune_epochs,
            batch_size=batch_size,
            lr=lr,
            structure_lr=structure_lr,
            calibration_batches=calibration_batches,
            channel_multiple=channel_multiple,
            augment=augment,
            seed=seed,
            device=device,
            keep_layers=tuple(keep_layer or ()),
            precision=precision,
            quantize=quantize,
            int8_max_drop=int8_max_drop,
            residual="coupled" if prune_residual else "inside",
            data_workers=data_workers,
        )
    except (InvalidTarget, ValueError) as exc:
        raise _fail(str(exc)) from None

    from pruning.checkpoints import CheckpointError
    from pruning.data import DataError
    from pruning.network.discovery import NoPrunableUnits
    from pruning.pipeline import CompressRequest, run_compression
    from pruning.progress_display import RichProgress

    request = CompressRequest(
        arch=name,
        data=data,
        config=config,
        checkpoint=checkpoint,
        width_mult=width_mult,
        input_size=_parse_size(input_size),
    )
    from pruning.watchdog import StallWatchdog, stall_message

    def stalled(seconds: float) -> None:
        # The stuck thread holds the run: nothing but ending the process frees it.
        typer.echo(f"\nerror: {stall_message(seconds)}", err=True)
        os._exit(STALLED_EXIT)

    try:
        with RichProgress() as display, StallWatchdog(stall_timeout, stalled) as watchdog:
            result = run_compression(request, out, watchdog.watch(display.hooks()))
    except (DataError, CheckpointError, InvalidTarget, NoPrunableUnits, UnknownArchitecture) as exc:
        raise _fail(str(exc)) from None
    report = result.report
    achieved, base, pruned = report["achieved"], report["baseline"], report["pruned"]
    typer.echo(
        f"FLOPs (MACs) -{achieved['flops']:.1%}  params -{achieved['params']:.1%}  "
        f"accuracy {base['accuracy']:.4f} -> {pruned['accuracy']:.4f}"
    )
    int8 = report.get("int8")
    if int8 is not None:
        typer.echo(
            f"INT8 accuracy {int8['accuracy']:.4f} (fp32 {int8['fp32_accuracy']:.4f})"
            if int8["published"]
            else f"INT8 not written: {int8['reason']}"
        )
    typer.echo(f"artifacts in {out}: {', '.join(sorted(result.artifacts))}")


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
    batch_size: Annotated[
        int, typer.Option(min=1, metavar="N", help="Samples per training step.")
    ] = 64,
    lr: Annotated[float, typer.Option(metavar="LR", help="Learning rate.")] = 0.05,
    augment: AugmentOption = None,
    seed: Annotated[int, typer.Option(metavar="N", help="Random seed, for a repeatable run.")] = 0,
    device: Annotated[
        str, typer.Option(metavar="DEVICE", help="auto, cpu, cuda or cuda:N.")
    ] = "auto",
) -> None:
    """Train a model from scratch and save a checkpoint (for demos and tests)."""
    from pruning.data import DataError
    from pruning.models.registry import available_models
    from pruning.pretrain import pretrain as run_pretrain

    if arch not in available_models():
        raise _fail(f"unknown arch {arch!r}; known: {', '.join(available_models())}")

    def on_epoch(epoch: int, loss: float, accuracy: float) -> None:
        typer.echo(f"epoch {epoch}/{epochs}: test loss {loss:.4f}, accuracy {accuracy:.4f}")

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
        raise _fail(str(exc)) from None
    typer.echo(f"saved {result.path} (accuracy {result.accuracy:.4f})")


def register(app: typer.Typer) -> None:
    app.command("compress")(compress)
    app.command("pretrain")(pretrain)
