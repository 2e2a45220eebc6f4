"""End to end, from files to artifacts: what `edgeprune compress` and the worker run.

load checkpoint + data → engine (calibrate, structure learning, removal, weight learning)
→ export model.onnx and baseline.onnx (with parity checks) → pruned.pt, structure.json,
report.json and plots, all in one output folder.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgeprune.contracts.architectures import NATURAL_INPUT_HW
from edgeprune.contracts.artifacts import (
    ALWAYS_PUBLISHED,
    BASELINE_ONNX,
    CHANNELS_PNG,
    HISTORY_PNG,
    INT8_ONNX,
    MODEL_ONNX,
    PRUNED_PT,
    REPORT_JSON,
    STRUCTURE_JSON,
)
from edgeprune.contracts.report import Report
from pruning.checkpoints import (
    CheckpointError,
    CheckpointMismatch,
    infer_spec,
    load_into,
    model_from_state,
    read_checkpoint,
    save_checkpoint,
)
from pruning.config import CompressConfig, ProgressEvent, RunHooks
from pruning.data import TaskData, load_task_data
from pruning.data.archives import DEFAULT_LIMITS, ArchiveLimits
from pruning.data.augmentation import background_fill
from pruning.engine import TaskTensors, compress_model
from pruning.engine.limits import reduction_limits
from pruning.export.metadata import model_metadata, write_metadata
from pruning.export.onnx import export_onnx
from pruning.export.quantize import calibration_sample
from pruning.int8_step import quantize_for_edge
from pruning.models.registry import ModelSpec, available_models, build_model
from pruning.network.metrics import count_model
from pruning.report import build_report, plot_channels, plot_history, with_roles, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompressRequest:
    arch: str
    data: str
    config: CompressConfig
    checkpoint: Path | None = None
    # Classes of the checkpoint's head (read from the file when it records them). The task's
    # classes come from the data; when they differ the head is re-initialised for the task.
    num_classes: int | None = None
    width_mult: float = 1.0
    input_size: tuple[int, int] | None = None
    source_job: str | None = None  # written into the exported models' metadata
    # How far an archive may expand (the service passes its operator's limits).
    archive_limits: ArchiveLimits = DEFAULT_LIMITS


@dataclass
class CompressResult:
    out_dir: Path
    artifacts: dict[str, Path]
    report: Report


# A checkpoint's weights and the structure they fit; None for a plain state dict of a network
# from outside the zoo, whose structure is the builder's own (built for the task's data).
_Loaded = tuple[dict[str, torch.Tensor], ModelSpec | None]


def _read_checkpoint(request: CompressRequest) -> _Loaded | None:
    """The checkpoint's weights and the structure they fit (stored, or read off the shapes)."""
    if request.checkpoint is None:
        return None
    state, stored = read_checkpoint(request.checkpoint)
    if stored is not None and stored.arch != request.arch:
        raise CheckpointMismatch(f"the checkpoint holds a {stored.arch}, not a {request.arch}")
    if stored is None and request.arch not in available_models():
        return state, None
    return state, stored or infer_spec(
        state, request.arch, num_classes=request.num_classes, width_mult=request.width_mult
    )


def _baseline_model(
    request: CompressRequest, data: TaskData, loaded: _Loaded | None
) -> tuple[nn.Module, ModelSpec, bool]:
    """The unpruned model the run starts from, built deterministically from the seed (a
    re-initialised head must come out the same when a resumed run rebuilds it)."""
    torch.manual_seed(request.config.seed)
    if loaded is None or loaded[1] is None:
        spec = ModelSpec(
            arch=request.arch,
            in_channels=data.input_shape[0],
            num_classes=data.num_classes,
            width_mult=request.width_mult,
        )
        if loaded is None:
            return build_model(spec), spec, False
        model = build_model(spec)
        load_into(model, loaded[0])
        return model, spec, False
    state, stored_spec = loaded
    assert stored_spec is not None
    spec = replace(stored_spec, num_classes=data.num_classes)
    model = build_model(spec)
    report = load_into(model, state)
    return model, spec, report.head_reinitialised


def run_compression(
    request: CompressRequest, out_dir: Path, hooks: RunHooks | None = None
) -> CompressResult:
    hooks = hooks or RunHooks()
    started = time.perf_counter()
    loaded = _read_checkpoint(request)
    # The teacher is the checkpoint: without one, or (below) with a head made afresh for this
    # task's classes, its outputs say nothing about the task. Checked before reading the data.
    if request.config.distill > 0 and loaded is None:
        raise CheckpointError("distill needs a checkpoint trained on this task; there is none")
    # The model's input channels decide how images are read; a mismatch is an error.
    data = load_task_data(
        request.data,
        input_size=request.input_size,
        in_channels=loaded[1].in_channels if loaded and loaded[1] else None,
        seed=request.config.seed,
        archive_limits=request.archive_limits,
    )
    model, spec, head_reinitialised = _baseline_model(request, data, loaded)
    if request.config.distill > 0 and head_reinitialised:
        raise CheckpointError(
            "distill needs a checkpoint trained on this task; the checkpoint's head was "
            "re-initialised for this task's classes"
        )
    baseline_state = {k: v.clone() for k, v in model.state_dict().items()}
    load_seconds = time.perf_counter() - started

    result = compress_model(
        model,
        spec,
        TaskTensors(
            data.x_train,
            data.y_train,
            data.x_test,
            data.y_test,
            kind=data.kind,
            augment_fill=background_fill(data.mean, data.std),
        ),
        request.config,
        hooks,
    )

    started = time.perf_counter()
    if hooks.on_progress is not None:
        hooks.on_progress(ProgressEvent(phase="exporting", progress=1.0, message="exporting ONNX"))
    out_dir.mkdir(parents=True, exist_ok=True)
    artifacts = {name: out_dir / name for name in ALWAYS_PUBLISHED}
    pruned_model = result.model.cpu().eval()
    baseline_model = build_model(spec)
    baseline_model.load_state_dict(baseline_state)
    baseline_model.eval()
    shape = data.input_shape
    parity_pruned = export_onnx(
        pruned_model, shape, artifacts[MODEL_ONNX], seed=request.config.seed
    )
    parity_baseline = export_onnx(
        baseline_model, shape, artifacts[BASELINE_ONNX], seed=request.config.seed
    )
    save_checkpoint(artifacts[PRUNED_PT], pruned_model, result.spec)
    write_json(artifacts[STRUCTURE_JSON], result.spec.to_json())

    # The achieved reduction is measured by counting the networks themselves.
    counted_before = count_model(baseline_model, shape)
    counted_after = count_model(pruned_model, shape)
    baseline = {**result.baseline, "flops": counted_before.flops, "params": counted_before.params}
    pruned = {**result.pruned, "flops": counted_after.flops, "params": counted_after.params}

    def describe(variant: str, counted: Any) -> dict[str, str]:
        return model_metadata(
            input_shape=shape, mean=data.mean, std=data.std, value_scale=data.value_scale,
            classes=data.classes, flops=counted.flops, params=counted.params, arch=spec.arch,
            variant=variant, source_job=request.source_job,
        )  # fmt: skip

    write_metadata(artifacts[MODEL_ONNX], describe("fp32", counted_after))
    write_metadata(artifacts[BASELINE_ONNX], describe("baseline", counted_before))
    int8 = None
    if request.config.quantize == "int8":
        int8 = _quantize(request, data, artifacts, out_dir)
        if int8["published"]:
            write_metadata(artifacts[INT8_ONNX], describe("int8", counted_after))
    timings = {"loading": load_seconds, **result.timings}
    timings["exporting"] = time.perf_counter() - started
    report = build_report(
        config=request.config,
        arch=spec.arch,
        data_source=request.data,
        input_shape=shape,
        classes=data.classes,
        baseline=baseline,
        pruned=pruned,
        units=with_roles(result.units, baseline_model, shape),
        kept_convs=result.kept_convs,
        reachable=result.reachable,
        history=result.history,
        timings=timings,
        checks={
            "masked_vs_pruned_max_abs_diff": result.self_check_max_abs_diff,
            "onnx_vs_torch_max_abs_diff": parity_pruned,
            "baseline_onnx_vs_torch_max_abs_diff": parity_baseline,
        },
        head_reinitialised=head_reinitialised,
    )
    report["structure"] = result.spec.to_json()
    report["runtime"] = result.runtime
    report["data"] = {
        # Per-channel statistics of the whole training split, from one streaming pass.
        "mean": data.mean,
        "std": data.std,
        "value_scale": data.value_scale,
        "classes": data.classes,
        "kind": data.kind,
        "train_samples": len(data.y_train),
        "test_samples": len(data.y_test),
    }
    if int8 is not None:
        report["int8"] = int8
    plot_channels(report, artifacts[CHANNELS_PNG])
    plot_history(report, artifacts[HISTORY_PNG])
    write_json(artifacts[REPORT_JSON], report)
    return CompressResult(out_dir=out_dir, artifacts=artifacts, report=report)


def _quantize(
    request: CompressRequest, data: TaskData, artifacts: dict[str, Path], out_dir: Path
) -> dict[str, Any]:
    """INT8 with onnxruntime, judged on the test split against the fp32 ONNX model and timed
    on this CPU (`pruning.int8_step`): published as model.int8.onnx unless it loses more than
    `int8_max_drop` (then the report says why)."""
    config = request.config
    path = out_dir / INT8_ONNX
    outcome = quantize_for_edge(
        artifacts[MODEL_ONNX], path,
        calibration_sample(data.x_train, config.int8_calibration_samples, config.seed),
        data.x_test, data.y_test, max_drop=config.int8_max_drop, input_shape=data.input_shape,
    )  # fmt: skip
    if outcome["published"]:
        artifacts[INT8_ONNX] = path
    return outcome


class MissingModelField(CheckpointError):
    """The checkpoint does not record what the inspection needs, and it was not given:
    `field` is "arch" or "input_shape"."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class InputShapeMismatch(CheckpointError):
    """The model does not run on the input shape it was given (or was assumed to take)."""


@dataclass(frozen=True)
class Inspection:
    """What `inspect_model` found: the counts and the model's arch, classes and input.
    `shape_source` says where the input's height and width came from: "given",
    "checkpoint" (the file's structure record) or "usual" (the architecture's natural
    input, NATURAL_INPUT_HW)."""

    params: int
    flops: int
    arch: str
    num_classes: int
    input_shape: tuple[int, int, int]
    shape_source: str
    spec_in_file: bool
    # The largest reduction per metric with every prunable unit at its floor, for channel
    # multiples 1..64 (`pruning.engine.limits`); None when the units could not be found.
    limits: dict[str, list[float]] | None = None


def inspect_model(
    path: Path,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> Inspection:
    """Load a checkpoint and count it; CheckpointError when it does not fit.

    What is not given is read from the checkpoint: its structure record when it has one
    (arch, classes, input channels, and height and width when recorded), else its weights
    (classes and input channels of a plain state dict, whose `arch` is then required). The
    height and width default to the architecture's usual input. `MissingModelField` names
    what could not be found; `InputShapeMismatch` is a model that does not run on the shape.
    """
    state, stored = read_checkpoint(path)
    if stored is None and arch is None:
        raise MissingModelField(
            "arch", f"{path.name} is a plain state dict: it does not record its architecture"
        )
    model, spec, _report = model_from_state(
        state, stored, name=path.name, arch=arch, num_classes=num_classes
    )
    if input_shape is not None and input_shape[0] != spec.in_channels:
        raise InputShapeMismatch(
            f"the checkpoint's {spec.arch} takes {spec.in_channels}-channel inputs, "
            f"not {input_shape[0]}"
        )
    if input_shape is not None:
        hw, source = (int(input_shape[1]), int(input_shape[2])), "given"
    elif stored is not None and stored.input_hw is not None:
        hw, source = stored.input_hw, "checkpoint"
    elif spec.arch in NATURAL_INPUT_HW:
        hw, source = NATURAL_INPUT_HW[spec.arch], "usual"
    else:
        raise MissingModelField(
            "input_shape",
            f"the checkpoint does not record its input size, and {spec.arch} has no usual one",
        )
    shape = (spec.in_channels, hw[0], hw[1])
    try:
        cost = count_model(model, shape)
    except RuntimeError:
        # Torch's own text ("Calculated output size: (128x0x0)", "mat1 and mat2 shapes
        # cannot be multiplied") says nothing a user can act on.
        raise InputShapeMismatch(
            f"{spec.arch} does not run on {'x'.join(map(str, shape))} inputs (C,H,W): too "
            "small for its downsampling, or not the size its classifier was built for"
        ) from None
    try:
        limits: dict[str, list[float]] | None = reduction_limits(model, shape)
    except Exception as exc:  # a network the engine cannot prune fails its job, not its upload
        log.warning("no reduction limits for %s: %s: %s", spec.arch, type(exc).__name__, exc)
        limits = None
    return Inspection(
        params=int(cost.params),
        flops=int(cost.flops),
        arch=spec.arch,
        num_classes=spec.num_classes,
        input_shape=shape,
        shape_source=source,
        spec_in_file=stored is not None,
        limits=limits,
    )
