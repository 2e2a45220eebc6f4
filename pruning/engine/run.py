"""The phases of a compression run around one epoch runner: baseline and calibration,
structure learning, channel removal, weight learning, and the result."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from pruning.config import Cancelled, CompressConfig, Phase, RunHooks
from pruning.data.augmentation import resolve_augment
from pruning.engine.calibration import calibrate, phase_generator
from pruning.engine.progress import RunProgress
from pruning.engine.results import EngineResult, PruningMismatch, TaskTensors
from pruning.engine.resume import ResumeState, cpu_state
from pruning.engine.schedules import finetune_scheduler
from pruning.models.registry import ModelSpec, build_model
from pruning.network.cost import CostModel
from pruning.network.dependency import DependencyAdapter
from pruning.network.discovery import Discovery, discover_units
from pruning.network.units import PrunableModel, UnitSpec, unit_widths
from pruning.precision import plan, prepare_for
from pruning.structure.gates import UnitGates
from pruning.structure.learner import StructureLearner
from pruning.training import (
    EpochStats,
    data_workers,
    evaluate,
    select_device,
    steps_per_epoch,
    train_one_epoch,
)


def select_units(model: nn.Module, example: Tensor, config: CompressConfig) -> Discovery:
    """The zoo's hand-written unit list where it applies, else the units discovered from the
    dependency graph (`pruning.network.discovery`)."""
    declared = (
        isinstance(model, PrunableModel)
        and config.unit_source == "auto"
        and config.residual == "inside"
        and not config.keep_layers
    )
    if declared and isinstance(model, PrunableModel):
        return Discovery(list(model.prunable_units()), [], declared=True)
    return discover_units(model, example, ignore=config.keep_layers, residual=config.residual)


def _sgd(model: nn.Module, lr: float, config: CompressConfig) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(), lr=lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


class CompressionRun:
    """One compression run: the state every phase shares, one method per phase, and the
    epoch runner that structure learning and weight learning both use."""

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
        self.example = data.x_test[:1].to(device)
        self.discovery = select_units(self.model, self.example, config)
        self.units = self.discovery.units
        self.capacity = unit_widths(self.model, self.units)
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
        self.model.eval()
        self.adapter = DependencyAdapter(self.model, self.example, self.units)
        self.cost_model = CostModel.build(
            self.model, self.example, self.adapter.couplings(), self.capacity
        )

    # -- shared pieces ----------------------------------------------------------------------
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

    # -- step 0: the unpruned baseline and calibration ---------------------------------------
    def start_structure_learning(
        self, resume: ResumeState | None
    ) -> tuple[StructureLearner, torch.optim.SGD, int]:
        gates = UnitGates(
            self.model,
            self.units,
            self.capacity,
            self.adapter.consumers(),
            example=self.example,
            batch_size=self.config.batch_size,
        )
        learner = StructureLearner(gates, self.capacity, self.cost_model, self.config)
        optimizer = _sgd(self.model, self.config.structure_lr, self.config)
        if resume is not None:
            assert resume.learner is not None
            self.model.load_state_dict(resume.model)
            optimizer.load_state_dict(resume.optimizer)
            learner.load_state_dict(resume.learner)
            self.restore(resume)
            self.progress.done = self.calibration_steps + self.steps * resume.epoch
            return learner, optimizer, resume.epoch
        started = time.perf_counter()
        stats = self.evaluate()
        self.baseline = {
            "accuracy": stats.accuracy,
            "loss": stats.loss,
            "flops": self.cost_model.cost(self.capacity, "flops"),
            "params": self.cost_model.cost(self.capacity, "params"),
        }
        self.progress.emit(
            "calibrating", message="measuring channel saliency", steps=self.calibration_steps
        )
        calibrate(
            self.model,
            self.data,
            learner,
            self.config,
            self.device,
            self.calibration_steps,
            self.progress,
            self.cancel,
        )
        learner.finish_calibration()
        self.timings["calibrating"] = time.perf_counter() - started
        return learner, optimizer, 0

    # -- steps 1-2: structure learning ----------------------------------------------------------
    def learn_structure(
        self, learner: StructureLearner, optimizer: torch.optim.SGD, start_epoch: int
    ) -> None:
        epochs = self.config.structure_epochs
        started = time.perf_counter()
        for epoch in range(start_epoch + 1, epochs + 1):
            record = self.run_epoch(
                "structure_learning",
                epoch,
                epochs,
                optimizer,
                lambda: {"flops": learner.cost("flops")},
                after_backward=learner.after_backward,
            )
            # The masked network is evaluated (above) with the masks it trained under: after
            # redistribution its BN running statistics would belong to another structure.
            step = learner.redistribute(learner.release_at(epoch, epochs))
            record.update(
                flops=learner.cost("flops"),
                params=learner.cost("params"),
                proposed=_by_unit(self.units, step.proposed),
                allocation=_by_unit(self.units, step.allocation),
                active=_by_unit(self.units, step.allocation),
                learned_moves=step.learned_moves,
                fit_moved=step.fit_moved,
                reverted=step.reverted,
            )
            started = self.end_epoch(
                record, epochs, started, optimizer, lambda: {"learner": learner.state_dict()}
            )
        self.lap("structure_learning", started)

    # -- step 3: channel removal, checked against the masked network --------------------------
    def remove_channels(self, learner: StructureLearner) -> tuple[ModelSpec, float]:
        started = time.perf_counter()
        self.progress.emit("pruning", message="removing inactive channels")
        masks = learner.masks()
        check_x = self.data.x_test[:64].to(self.device)
        self.model.eval()
        with torch.no_grad():
            masked_out = self.model(check_x)
        learner.gates.remove()
        self.adapter.remove_channels(masks)
        prepare_for(self.model, self.device)  # the new, narrower weights in the device's layout
        with torch.no_grad():
            pruned_out = self.model(check_x)
        diff = float((masked_out - pruned_out).abs().max())
        # 1e-4 relative to the logits' scale (absolute below 1): float32 sums in another
        # order (a GPU's kernels, TF32) differ by more than 1e-4 on large logits.
        tolerance = 1e-4 * max(1.0, float(masked_out.abs().max()))
        if not diff <= tolerance:
            raise PruningMismatch(
                f"pruned network differs from the masked one by {diff:.3g} (> {tolerance:.3g})"
            )
        self.timings["pruning"] = time.perf_counter() - started
        pruned_spec = replace(self.spec, widths=tuple(unit_widths(self.model, self.units)))
        if not self.discovery.declared:  # rebuilt by removing channels from these convs
            hw = (int(self.example.shape[-2]), int(self.example.shape[-1]))
            pruned_spec = replace(
                pruned_spec, unit_convs=tuple(u.conv for u in self.units), input_hw=hw
            )
        return pruned_spec, diff

    # -- step 4: weight learning of the compact network ----------------------------------------
    def weight_learning_optimiser(
        self,
    ) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LRScheduler]:
        optimizer = _sgd(self.model, self.config.lr, self.config)
        total = self.config.finetune_epochs * self.steps
        return optimizer, finetune_scheduler(optimizer, total, self.config.finetune_schedule)

    def resume_weight_learning(
        self, resume: ResumeState
    ) -> tuple[ModelSpec, float, torch.optim.SGD, torch.optim.lr_scheduler.LRScheduler]:
        assert resume.spec is not None and resume.scheduler is not None
        assert resume.self_check is not None
        self.restore(resume)
        pruned_spec = ModelSpec.from_json(resume.spec)
        self.model = prepare_for(build_model(pruned_spec).to(self.device), self.device)
        self.model.load_state_dict(resume.model)
        optimizer, scheduler = self.weight_learning_optimiser()
        optimizer.load_state_dict(resume.optimizer)
        scheduler.load_state_dict(resume.scheduler)
        done = self.config.structure_epochs + resume.epoch
        self.progress.done = self.calibration_steps + self.steps * done
        return pruned_spec, resume.self_check, optimizer, scheduler

    def learn_weights(
        self,
        pruned_spec: ModelSpec,
        diff: float,
        optimizer: torch.optim.SGD,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        start_epoch: int,
    ) -> None:
        epochs = self.config.finetune_epochs
        widths = list(pruned_spec.widths or self.capacity)
        flops = self.cost_model.cost(widths, "flops")
        params = self.cost_model.cost(widths, "params")
        started = time.perf_counter()
        for epoch in range(start_epoch + 1, epochs + 1):
            record = self.run_epoch(
                "weight_learning",
                epoch,
                epochs,
                optimizer,
                lambda: {"flops": flops},
                scheduler=scheduler,
            )
            record.update(flops=flops, params=params)
            started = self.end_epoch(
                record,
                epochs,
                started,
                optimizer,
                lambda: {
                    "scheduler": scheduler.state_dict(),
                    "spec": pruned_spec.to_json(),
                    "self_check": diff,
                },
            )
        self.lap("weight_learning", started)
        if self.cancel is not None and self.cancel():
            raise Cancelled("canceled after weight learning")

    # -- the result -------------------------------------------------------------------------------
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


def _by_unit(units: list[UnitSpec], widths: list[int]) -> dict[str, int]:
    return {u.name: a for u, a in zip(units, widths, strict=True)}
