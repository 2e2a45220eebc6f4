"""`edgeprune compress`: compress a model to a target and export it, without a server.

Module-level imports are typer and the standard library only; torch loads inside the command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from edgeprune.contracts.limits import Precision, Quantize, TargetFitChoice
from pruning.cli.options import (
    STALLED_EXIT,
    ZOO_NAMES,
    AugmentOption,
    BatchSize,
    Device,
    JsonResult,
    Seed,
    fail,
    parse_size,
)
from pruning.cli.output import show_result
from pruning.config import DEFAULT_DISTILL_PHASES, DistillPhases

FROM_SCRATCH_LR = 0.1


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
            "channels=0.5; R between 0 and 1. Every pruned layer keeps at least 10% of "
            "its channels, so a target past what that allows is refused before training, "
            "naming the most it allows.",
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
    batch_size: BatchSize = 64,
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
    seed: Seed = 0,
    device: Device = "auto",
    precision: Annotated[
        Precision,
        typer.Option(
            help="Training arithmetic: auto (bf16 on CUDA that has it, fp16 with a gradient "
            "scaler on CUDA that does not, fp32 on the CPU), fp32, bf16 or fp16."
        ),
    ] = "auto",
    distill: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            metavar="W",
            help="Weight of distilling --checkpoint in training (0 = labels only; 0.5 "
            "suits a checkpoint that has finished training, docs/algorithm.md).",
        ),
    ] = 0.0,
    distill_phases: Annotated[
        DistillPhases,
        typer.Option(
            help="Which phases follow the teacher with --distill: weights (weight learning "
            "only) or both (structure learning too, so its saliencies come from the "
            "distilled loss).",
        ),
    ] = DEFAULT_DISTILL_PHASES,
    target_fit: Annotated[
        TargetFitChoice,
        typer.Option(
            help="How a flops/params target is met: scale (the learned widths times one "
            "factor) or cost_aware (regrowth favours units where a channel is cheap; better "
            "on MobileNet-style networks that end in wide 1x1 convs, worse on VGG-16; "
            "docs/algorithm.md).",
        ),
    ] = "scale",
    quantize: Annotated[
        Quantize,
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
    as_json: JsonResult = False,
) -> None:
    """Compress a model to a FLOPs (MACs), params or channels target and export ONNX.

    With --json, stdout is one object: the job summary's keys (target, achieved,
    accuracy_before/after, flops_before/after, params_before/after, preprocessing, int8)
    plus out_dir and artifacts {name: path}; the progress bars go to stderr.
    """
    from pruning.config import CompressConfig, InvalidTarget, Target
    from pruning.models.registry import UnknownArchitecture, available_models, external_builder

    if (arch is None) == (model is None):
        raise fail("give exactly one of --arch (a known architecture) or --model module:callable")
    name = arch if arch is not None else str(model)
    if arch is not None and ":" in arch:
        raise fail(f"--arch takes a name; for an import string use --model {arch}")
    if name not in available_models():
        try:
            external_builder(name)
        except UnknownArchitecture as exc:
            raise fail(str(exc)) from None
    if checkpoint is not None and not checkpoint.is_file():
        raise fail(f"checkpoint {checkpoint} does not exist")
    if distill > 0 and checkpoint is None:
        raise fail("--distill needs --checkpoint: a network trained from scratch has no teacher")
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
            distill=distill,
            distill_phases=distill_phases,
            target_fit=target_fit,
            residual="coupled" if prune_residual else "inside",
            data_workers=data_workers,
        )
    except (InvalidTarget, ValueError) as exc:
        raise fail(str(exc)) from None

    from pruning.checkpoints import CheckpointError
    from pruning.cli.progress import RichProgress
    from pruning.data import DataError
    from pruning.network.discovery import NoPrunableUnits
    from pruning.pipeline import CompressRequest, run_compression

    request = CompressRequest(
        arch=name,
        data=data,
        config=config,
        checkpoint=checkpoint,
        width_mult=width_mult,
        input_size=parse_size(input_size),
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
        raise fail(str(exc)) from None
    show_result(result, out, as_json=as_json)
