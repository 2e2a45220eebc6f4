"""The compression run: calibrate → structure learning → channel removal → weight learning.

Works on an in-memory model and task data; loading files, export and the report are the
pipeline's job (`pruning.pipeline`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pruning.config import Cancelled, CompressConfig, Phase, ProgressEvent, RunHooks
from pruning.cost import CostModel
from pruning.cpu_kernels import guard_cpu_kernels
from pruning.data.augmentation import resolve_augment
from pruning.data.batches import iterate_batches
from pruning.data.types import Inputs
from pruning.dependency import DependencyAdapter
from pruning.discovery import Discovery, discover_units
from pruning.gates import UnitGates
from pruning.models.registry import ModelSpec, build_model
from pruning.precision import plan, prepare_for
from pruning.schedules import finetune_scheduler
from pruning.structure import StructureLearner
from pruning.training import (
    data_workers,
    evaluate,
    select_device,
    steps_per_epoch,
    train_one_epoch,
)
from pruning.units import PrunableModel, UnitSpec, unit_widths


class PruningMismatch(RuntimeError):
    """The pruned network does not compute what the masked network computed."""


@dataclass
class TaskTensors:
    """What the engine needs of the data: normalised inputs on the CPU (tensors, or `Samples`
    read a batch at a time) and int64 labels."""

    x_train: Inputs
    y_train: Tensor
    x_test: Inputs
    y_test: Tensor
    # The data's kind decides the default augmentation; its padding is `augment_fill` per
    # channel (pruning.data.augmentation), 0 (the mean) when not given.
    kind: str = "images"
    augment_fill: Tensor | None = None


@dataclass
class EngineResult:
    model: nn.Module
    spec: ModelSpec
    units: list[dict[str, Any]]
    kept_convs: list[dict[str, str]]
    baseline: dict[str, float]
    pruned: dict[str, float]
    history: list[dict[str, Any]]
    timings: dict[str, float]
    self_check_max_abs_diff: float
    masked_model_metrics: dict[str, float] = field(default_factory=dict)
    # Where and how it trained: the device (e.g. "cuda:0", "cpu") and the precision that
    # "auto" resolved to.
    runtime: dict[str, str] = field(default_factory=dict)


def select_units(model: nn.Module, example: Tensor, config: CompressConfig) -> Discovery:
    """The zoo's hand-written unit list where it applies, else the units discovered from the
    dependency graph (`pruning.discovery`)."""
    declared = (
        isinstance(model, PrunableModel)
        and config.unit_source == "auto"
        and config.residual == "inside"
        and not config.keep_layers
    )
    if declared and isinstance(model, PrunableModel):
        return Discovery(list(model.prunable_units()), [], declared=True)
    return discover_units(model, example, ignore=config.keep_layers, residual=config.residual)


class _Progress:
    """Turns training steps into the run's overall fraction. Every step is reported; the
    driver decides what to persist (the worker throttles, the CLI redraws)."""

    def __init__(self, hooks: RunHooks, total_steps: int):
        self.hooks = hooks
        self.total = max(total_steps, 1)
        self.done = 0

    def emit(self, phase: Phase, **kwargs: Any) -> None:
        if self.hooks.on_progress is not None:
            progress = min(self.done / self.total, 1.0)
            self.hooks.on_progress(ProgressEvent(phase=phase, progress=progress, **kwargs))

    def step_callback(
        self, phase: Phase, epoch: int, epochs: int, extra: Callable[[], dict[str, Any]]
    ) -> Callable[[int, int, float, float], None]:
        def on_step(step: int, steps: int, loss: float, accuracy: float) -> None:
            self.done += 1
            self.emit(
                phase,
                epoch=epoch,
                epochs=epochs,
                step=step,
                steps=steps,
                metrics={"loss": loss, "accuracy": accuracy, **extra()},
            )

        return on_step


def _sgd(model: nn.Module, lr: float, config: CompressConfig) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def _generator(seed: int, phase_index: int, epoch: int) -> torch.Generator:
    # One generator per (phase, epoch): a resumed run shuffles exactly like an unbroken one.
    return torch.Generator().manual_seed(seed * 1_000_003 + phase_index * 10_007 + epoch)


def compress_model(
    model: nn.Module,
    spec: ModelSpec,
    data: TaskTensors,
    config: CompressConfig,
    hooks: RunHooks | None = None,
) -> EngineResult:
    hooks = hooks or RunHooks()
    cancel = hooks.should_cancel
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    model = prepare_for(model.to(device), device)
    example = data.x_test[:1].to(device)
    discovery = select_units(model, example, config)
    units = discovery.units
    capacity = unit_widths(model, units)
    n_train = data.x_train.shape[0]
    steps = steps_per_epoch(n_train, config.batch_size)
    calibration_steps = min(config.calibration_batches, steps)
    progress = _Progress(
        hooks, calibration_steps + steps * (config.structure_epochs + config.finetune_epochs)
    )
    timings: dict[str, float] = {}
    workers = data_workers(config.data_workers, device)
    augment = resolve_augment(config.augment, data.kind)
    eval_kwargs = {
        "batch_size": max(config.batch_size, 128),
        "device": device,
        "max_batches": config.max_eval_batches,
        "workers": workers,
    }
    x_test, y_test = data.x_test, data.y_test

    model.eval()
    adapter = DependencyAdapter(model, example, units)
    cost_model = CostModel.build(model, example, adapter.couplings(), capacity)
    full_flops = cost_model.cost(capacity, "flops")
    full_params = cost_model.cost(capacity, "params")

    resume = hooks.load_checkpoint() if hooks.load_checkpoint is not None else None
    history: list[dict[str, Any]] = list(resume["history"]) if resume else []
    baseline: dict[str, float]

    # ---- calibration and structure learning (skipped when resuming weight learning) ----
    resume_phase = resume["phase"] if resume else None
    gates: UnitGates | None = None
    if resume_phase != "weight_learning":
        gates = UnitGates(
            model,
            units,
            capacity,
            adapter.consumers(),
            example=example,
            batch_size=config.batch_size,
        )
        learner = StructureLearner(gates, capacity, cost_model, config)
        optimizer = _sgd(model, config.structure_lr, config)
        start_epoch = 0
        if resume is not None:
            model.load_state_dict(resume["model"])
            optimizer.load_state_dict(resume["optimizer"])
            learner.load_state_dict(resume["learner"])
            baseline = dict(resume["baseline"])
            start_epoch = int(resume["epoch"])
            timings = dict(resume["timings"])
            progress.done = calibration_steps + steps * start_epoch
        else:
            started = time.perf_counter()
            stats = evaluate(model, x_test, y_test, **eval_kwargs)  # type: ignore[arg-type]
            baseline = {
                "accuracy": stats.accuracy,
                "loss": stats.loss,
                "flops": full_flops,
                "params": full_params,
            }
            progress.emit(
                "calibrating", message="measuring channel saliency", steps=calibration_steps
            )
            _calibrate(model, data, learner, config, device, calibration_steps, progress, cancel)
            learner.finish_calibration()
            timings["calibrating"] = time.perf_counter() - started

        started = time.perf_counter()
        for epoch in range(start_epoch + 1, config.structure_epochs + 1):

            def extra(learner: StructureLearner = learner) -> dict[str, Any]:
                return {"flops": learner.cost("flops")}

            train_stats = train_one_epoch(
                model,
                data.x_train,
                data.y_train,
                optimizer=optimizer,
                batch_size=config.batch_size,
                generator=_generator(config.seed, 1, epoch),
                augment=augment,
                augment_fill=data.augment_fill,
                device=device,
                after_backward=learner.after_backward,
                on_step=progress.step_callback(
                    "structure_learning", epoch, config.structure_epochs, extra
                ),
                should_cancel=cancel,
                precision=config.precision,
                workers=workers,
            )
            # The masked network is evaluated with the masks it trained under: after
            # redistribution its BN running statistics would belong to another structure.
            test_stats = evaluate(model, x_test, y_test, **eval_kwargs)  # type: ignore[arg-type]
            step = learner.redistribute(learner.release_at(epoch, config.structure_epochs))
            record = {
                "phase": "structure_learning",
                "epoch": epoch,
                "train_loss": train_stats.loss,
                "train_accuracy": train_stats.accuracy,
                "loss": test_stats.loss,
                "accuracy": test_stats.accuracy,
                "flops": learner.cost("flops"),
                "params": learner.cost("params"),
                "proposed": _by_unit(units, step.proposed),
                "allocation": _by_unit(units, step.allocation),
                "active": _by_unit(units, step.allocation),
                "learned_moves": step.learned_moves,
                "fit_moved": step.fit_moved,
                "reverted": step.reverted,
            }
            history.append(record)
            progress.emit(
                "structure_learning",
                epoch=epoch,
                epochs=config.structure_epochs,
                metrics={k: v for k, v in record.items() if isinstance(v, float)},
                channels=record["allocation"],
                proposed=record["proposed"],
                message="epoch done",
            )
            if hooks.save_checkpoint is not None:
                started = _lap(timings, "structure_learning", started)
                _save_checkpoint(
                    hooks,
                    phase="structure_learning",
                    epoch=epoch,
                    model=model,
                    baseline=baseline,
                    history=history,
                    timings=timings,
                    optimizer=optimizer.state_dict(),
                    learner=learner.state_dict(),
                )
        _lap(timings, "structure_learning", started)

        # ---- step 3: channel removal with the masked ≡ pruned self-check ----
        started = time.perf_counter()
        progress.emit("pruning", message="removing inactive channels")
        masks = learner.masks()
        check_x = x_test[:64].to(device)
        model.eval()
        with torch.no_grad():
            masked_out = model(check_x)
        gates.remove()
        adapter.remove_channels(masks)
        prepare_for(model, device)  # the new, narrower weights in the device's layout
        with torch.no_grad():
            pruned_out = model(check_x)
        diff = float((masked_out - pruned_out).abs().max())
        # 1e-4 relative to the logits' scale (absolute below 1): float32 sums in another
        # order (a GPU's kernels, TF32) differ by more than 1e-4 on large logits.
        tolerance = 1e-4 * max(1.0, float(masked_out.abs().max()))
        if not diff <= tolerance:
            raise PruningMismatch(
                f"pruned network differs from the masked one by {diff:.3g} (> {tolerance:.3g})"
            )
        timings["pruning"] = time.perf_counter() - started
        pruned_spec = replace(spec, widths=tuple(unit_widths(model, units)))
        if not discovery.declared:  # rebuilt by removing channels from these convs
            hw = (int(example.shape[-2]), int(example.shape[-1]))
            pruned_spec = replace(pruned_spec, unit_convs=tuple(u.conv for u in units), input_hw=hw)
        ft_start_epoch = 0
        ft_optimizer = _sgd(model, config.lr, config)
        ft_scheduler = finetune_scheduler(
            ft_optimizer, config.finetune_epochs * steps, config.finetune_schedule
        )
    else:
        assert resume is not None
        diff = float(resume["self_check"])
        baseline = dict(resume["baseline"])
        timings = dict(resume["timings"])
        pruned_spec = ModelSpec.from_json(resume["spec"])
        model = prepare_for(build_model(pruned_spec).to(device), device)
        model.load_state_dict(resume["model"])
        ft_optimizer = _sgd(model, config.lr, config)
        ft_optimizer.load_state_dict(resume["optimizer"])
        ft_scheduler = finetune_scheduler(
            ft_optimizer, config.finetune_epochs * steps, config.finetune_schedule
        )
        ft_scheduler.load_state_dict(resume["scheduler"])
        ft_start_epoch = int(resume["epoch"])
        progress.done = calibration_steps + steps * (config.structure_epochs + ft_start_epoch)

    # ---- step 4: weight learning of the compact network ----
    started = time.perf_counter()
    compact_flops = cost_model.cost(list(pruned_spec.widths or capacity), "flops")
    compact_params = cost_model.cost(list(pruned_spec.widths or capacity), "params")
    for epoch in range(ft_start_epoch + 1, config.finetune_epochs + 1):
        train_stats = train_one_epoch(
            model,
            data.x_train,
            data.y_train,
            optimizer=ft_optimizer,
            batch_size=config.batch_size,
            generator=_generator(config.seed, 2, epoch),
            augment=augment,
            augment_fill=data.augment_fill,
            device=device,
            scheduler=ft_scheduler,
            on_step=progress.step_callback(
                "weight_learning", epoch, config.finetune_epochs, lambda: {"flops": compact_flops}
            ),
            should_cancel=cancel,
            precision=config.precision,
            workers=workers,
        )
        test_stats = evaluate(model, x_test, y_test, **eval_kwargs)  # type: ignore[arg-type]
        record = {
            "phase": "weight_learning",
            "epoch": epoch,
            "train_loss": train_stats.loss,
            "train_accuracy": train_stats.accuracy,
            "loss": test_stats.loss,
            "accuracy": test_stats.accuracy,
            "flops": compact_flops,
            "params": compact_params,
        }
        history.append(record)
        progress.emit(
            "weight_learning",
            epoch=epoch,
            epochs=config.finetune_epochs,
            metrics={k: v for k, v in record.items() if isinstance(v, float)},
            message="epoch done",
        )
        if hooks.save_checkpoint is not None:
            started = _lap(timings, "weight_learning", started)
            _save_checkpoint(
                hooks,
                phase="weight_learning",
                epoch=epoch,
                model=model,
                baseline=baseline,
                history=history,
                timings=timings,
                optimizer=ft_optimizer.state_dict(),
                scheduler=ft_scheduler.state_dict(),
                spec=pruned_spec.to_json(),
                self_check=diff,
            )
    _lap(timings, "weight_learning", started)
    if cancel is not None and cancel():
        raise Cancelled("canceled after weight learning")

    final = evaluate(model, x_test, y_test, **eval_kwargs)  # type: ignore[arg-type]
    widths_after = list(pruned_spec.widths or capacity)
    model.eval()
    return EngineResult(
        model=model,
        spec=pruned_spec,
        units=[
            {"name": u.name, "channels_before": before, "channels_after": after}
            for u, before, after in zip(units, capacity, widths_after, strict=True)
        ],
        kept_convs=[{"conv": k.conv, "reason": k.reason} for k in discovery.kept],
        baseline=baseline,
        pruned={
            "accuracy": final.accuracy,
            "loss": final.loss,
            "flops": compact_flops,
            "params": compact_params,
        },
        history=history,
        timings=timings,
        self_check_max_abs_diff=diff,
        runtime={
            "device": _device_name(device),
            "precision": plan(config.precision, device).name,
            "augment": "shift-and-mirror" if augment else "off",
            "data_workers": str(workers),
        },
    )


def _calibrate(
    model: nn.Module,
    data: TaskTensors,
    learner: StructureLearner,
    config: CompressConfig,
    device: torch.device,
    calibration_steps: int,
    progress: _Progress,
    cancel: Callable[[], bool] | None,
) -> None:
    """Gradients with every channel active, no weight update (step 0). Runs in train mode
    like structure learning, but leaves the checkpoint's BN running statistics as they were:
    they describe the pretrained network, and evaluation reads them."""
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    model.train()
    batches = iterate_batches(
        data.x_train,
        data.y_train,
        config.batch_size,
        shuffle=True,
        augment=False,
        generator=_generator(config.seed, 0, 0),
        workers=data_workers(config.data_workers, device),
        pin_memory=device.type == "cuda",
    )
    try:
        with guard_cpu_kernels(model, device):
            for step, (xb, yb) in enumerate(batches, start=1):
                if step > calibration_steps:
                    break
                if cancel is not None and cancel():
                    raise Cancelled("canceled during calibration")
                model.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(xb.to(device)), yb.to(device))
                loss.backward()
                learner.accumulate_calibration()
                progress.done += 1
                progress.emit(
                    "calibrating",
                    step=step,
                    steps=calibration_steps,
                    metrics={"loss": float(loss.detach())},
                )
    finally:
        model.zero_grad(set_to_none=True)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])


def _device_name(device: torch.device) -> str:
    """e.g. "cuda:0 (NVIDIA H200, GPU-5f3c…, visible 2)": with one worker per GPU every
    worker's device is cuda:0, so the UUID and CUDA_VISIBLE_DEVICES say which GPU it was."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        properties = torch.cuda.get_device_properties(index)
        parts = [properties.name]
        uuid = getattr(properties, "uuid", None)
        if uuid is not None:
            parts.append(f"GPU-{uuid}")
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:
            parts.append(f"visible {visible}")
        return f"cuda:{index} ({', '.join(parts)})"
    return device.type


def _by_unit(units: list[UnitSpec], widths: list[int]) -> dict[str, int]:
    return {u.name: a for u, a in zip(units, widths, strict=True)}


def _lap(timings: dict[str, float], phase: str, started: float) -> float:
    """Add the time since `started` to the phase's total; returns now (the next start)."""
    now = time.perf_counter()
    timings[phase] = timings.get(phase, 0.0) + (now - started)
    return now


def _save_checkpoint(
    hooks: RunHooks,
    *,
    phase: str,
    epoch: int,
    model: nn.Module,
    baseline: dict[str, float],
    history: list[dict[str, Any]],
    timings: dict[str, float],
    **state: Any,
) -> None:
    """The resumable state at the end of an epoch: what every phase needs, plus `state`."""
    assert hooks.save_checkpoint is not None
    hooks.save_checkpoint(
        {
            "phase": phase,
            "epoch": epoch,
            "model": _cpu_state(model),
            "baseline": baseline,
            "history": _snapshot(history),
            "timings": dict(timings),
            **{key: _snapshot(value) for key, value in state.items()},
        }
    )


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _snapshot(value: Any) -> Any:
    """A deep copy with tensors cloned to CPU: optimiser state dicts hold live references to
    buffers that the next step would change under the caller's feet."""
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_snapshot(v) for v in value)
    return value
