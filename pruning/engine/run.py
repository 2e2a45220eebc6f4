"""What every phase of a compression run shares: the model and its units, the cost model,
progress, history and timings, the epoch runner that structure learning and weight learning
both use, the epoch checkpoint, and the result. The phases themselves are
`pruning.engine.structure_learning`, `.channel_removal` and `.weight_learning`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from pruning.config import CompressConfig, Phase, RunHooks
from pruning.data.augmentation import resolve_augment
from pruning.distillation import Distillation
from pruning.engine.calibration import phase_generator
from pruning.engine.limits import network_budget
from pruning.engine.progress import RunProgress
from pruning.engine.results import EngineResult, TaskTensors
from pruning.engine.resume import ResumeState, cpu_state
from pruning.models.registry import ModelSpec
from pruning.precision import plan, prepare_for
from pruning.structure.allocation import channel_floor, reachable_reduction, require_reachable
from pruning.training import (
    EpochStats,
    data_workers,
    evaluate,
    select_device,
    steps_per_epoch,
    train_one_epoch,
)


class CompressionRun:
    """One compression run: the state every phase shares and the epoch runner that
    structure learning and weight learning both use."""

    def __init__(
        self,
        model: nn.Module,
        spec: ModelSpec,
        data: TaskTensors,
        config: CompressConfig,
        hooks: RunHooks,
    ):
        self.spec, self.data, self.config, self.hooks = spec, data, config, hooks
        self.cancel = hooks.should_cancel
        self.device = device = select_device(config.device)
        torch.manual_seed(config.seed)
        self.model = prepare_for(model.to(device), device)
        # The checkpoint as given, kept for weight learning's teacher before anything trains
        # (not at all when there is no weight learning to teach: the copy is a whole network).
        self.distillation = (
            Distillation.frozen_copy(self.model, config.distill, config.distill_temperature)
            if config.distill > 0 and taught_epochs(config) > 0
            else None
        )
        self.example = data.x_test[:1].to(device)
        # The same budget the upload's inspection recorded its reduction limits from.
        budget = network_budget(self.model, self.example, config)
        self.discovery = budget.discovery
        self.units = self.discovery.units
        self.capacity = budget.capacity
        self.adapter, self.cost_model = budget.adapter, budget.cost_model
        self.steps = steps_per_epoch(data.x_train.shape[0], config.batch_size)
        self.calibration_steps = min(config.calibration_batches, self.steps)
        self.progress = RunProgress(
            hooks,
            self.calibration_steps
            + self.steps * (config.structure_epochs + config.finetune_epochs),
        )
        self.workers = data_workers(config.data_workers, device)
        self.augment = resolve_augment(config.augment, data.kind)
        self.timings: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self.baseline: dict[str, float] = {}
        self.floors = channel_floor(
            self.capacity, config.min_channels, config.channel_multiple, config.min_fraction
        )
        # A target the floors cannot reach fails now, not after calibration.
        require_reachable(self.capacity, config.target, self.cost_model, self.floors)

    def sgd(self, lr: float) -> torch.optim.SGD:
        """The optimiser of both training phases, at the phase's learning rate."""
        return torch.optim.SGD(
            self.model.parameters(),
            lr=lr,
            momentum=self.config.momentum,
            weight_decay=self.config.weight_decay,
        )

    def evaluate(self) -> EpochStats:
        return evaluate(
            self.model,
            self.data.x_test,
            self.data.y_test,
            batch_size=max(self.config.batch_size, 128),
            device=self.device,
            max_batches=self.config.max_eval_batches,
            workers=self.workers,
        )

    def run_epoch(
        self,
        phase: Phase,
        epoch: int,
        epochs: int,
        optimizer: torch.optim.Optimizer,
        metrics: Callable[[], dict[str, Any]],
        *,
        after_backward: Callable[[], None] | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        distillation: Distillation | None = None,
    ) -> dict[str, Any]:
        """One training epoch of `phase`, then the test split: the epoch's history record
        (each phase adds its own fields)."""
        phase_index = 1 if phase == "structure_learning" else 2
        train_stats = train_one_epoch(
            self.model,
            self.data.x_train,
            self.data.y_train,
            optimizer=optimizer,
            batch_size=self.config.batch_size,
            generator=phase_generator(self.config.seed, phase_index, epoch),
            augment=self.augment,
            augment_fill=self.data.augment_fill,
            device=self.device,
            after_backward=after_backward,
            scheduler=scheduler,
            on_step=self.progress.step_callback(phase, epoch, epochs, metrics),
            should_cancel=self.cancel,
            precision=self.config.precision,
            workers=self.workers,
            distillation=distillation,
        )
        test_stats = self.evaluate()
        return {
            "phase": phase,
            "epoch": epoch,
            "train_loss": train_stats.loss,
            "train_accuracy": train_stats.accuracy,
            "loss": test_stats.loss,
            "accuracy": test_stats.accuracy,
        }

    def end_epoch(
        self,
        record: dict[str, Any],
        epochs: int,
        started: float,
        optimizer: torch.optim.Optimizer,
        phase_state: Callable[[], dict[str, Any]],
    ) -> float:
        """Record the epoch, report it, and save the state a resumed run starts from: what
        every phase keeps, plus `phase_state()`. Returns when the phase's clock restarts."""
        saving = self.hooks.save_checkpoint is not None
        if saving:  # the checkpoint holds the time spent so far
            started = self.lap(record["phase"], started)
        self.history.append(record)
        self.progress.emit(
            record["phase"],
            epoch=record["epoch"],
            epochs=epochs,
            metrics={k: v for k, v in record.items() if isinstance(v, float)},
            channels=record.get("allocation"),
            proposed=record.get("proposed"),
            message="epoch done",
        )
        if saving:
            assert self.hooks.save_checkpoint is not None
            state = ResumeState(
                phase=record["phase"],
                epoch=record["epoch"],
                model=cpu_state(self.model),
                baseline=self.baseline,
                history=self.history,
                timings=self.timings,
                optimizer=optimizer.state_dict(),
                **phase_state(),
            )
            self.hooks.save_checkpoint(state.to_dict())
        return started

    def lap(self, phase: str, started: float) -> float:
        """Add the time since `started` to the phase's total; returns now (the next start)."""
        now = time.perf_counter()
        self.timings[phase] = self.timings.get(phase, 0.0) + (now - started)
        return now

    def restore(self, state: ResumeState) -> None:
        self.baseline = dict(state.baseline)
        self.history = list(state.history)
        self.timings = dict(state.timings)

    def reachable(self) -> float:
        """The largest reduction of the target's metric that the per-unit floors allow."""
        return reachable_reduction(
            self.capacity, self.floors, self.cost_model, self.config.target.metric
        )

    def result(self, pruned_spec: ModelSpec, diff: float) -> EngineResult:
        final = self.evaluate()
        widths = list(pruned_spec.widths or self.capacity)
        self.model.eval()
        return EngineResult(
            model=self.model,
            spec=pruned_spec,
            units=[
                {"name": u.name, "channels_before": before, "channels_after": after}
                for u, before, after in zip(self.units, self.capacity, widths, strict=True)
            ],
            kept_convs=[{"conv": k.conv, "reason": k.reason} for k in self.discovery.kept],
            baseline=self.baseline,
            pruned={
                "accuracy": final.accuracy,
                "loss": final.loss,
                "flops": self.cost_model.cost(widths, "flops"),
                "params": self.cost_model.cost(widths, "params"),
            },
            history=self.history,
            timings=self.timings,
            self_check_max_abs_diff=diff,
            reachable=self.reachable(),
            runtime={
                "device": _device_name(self.device),
                "precision": plan(self.config.precision, self.device).name,
                "augment": "shift-and-mirror" if self.augment else "off",
                "data_workers": str(self.workers),
            },
        )


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


def taught_epochs(config: CompressConfig) -> int:
    """How many epochs train against the teacher when distilling: weight learning's, plus
    structure learning's when it distils too."""
    structure = config.structure_epochs if config.distills_structure_learning else 0
    return config.finetune_epochs + structure
