"""Steps 0-2 of a compression run: the unpruned baseline and calibration (or the resumed
state), then the structure-learning epochs with channel redistribution after each."""

from __future__ import annotations

import time

import torch

from pruning.engine.calibration import calibrate
from pruning.engine.resume import ResumeState
from pruning.engine.run import CompressionRun
from pruning.network.units import UnitSpec
from pruning.structure.gates import UnitGates
from pruning.structure.learner import StructureLearner


def start_structure_learning(
    run: CompressionRun, resume: ResumeState | None
) -> tuple[StructureLearner, torch.optim.SGD, int]:
    """The learner, its optimiser and the last epoch done: restored from the checkpoint when
    resuming, else fresh after the unpruned baseline is measured and calibrated (step 0)."""
    gates = UnitGates(
        run.model,
        run.units,
        run.capacity,
        run.adapter.consumers(),
        example=run.example,
        batch_size=run.config.batch_size,
    )
    learner = StructureLearner(gates, run.capacity, run.cost_model, run.config, run.floors)
    optimizer = run.sgd(run.config.structure_lr)
    if resume is not None:
        assert resume.learner is not None
        run.model.load_state_dict(resume.model)
        optimizer.load_state_dict(resume.optimizer)
        learner.load_state_dict(resume.learner)
        run.restore(resume)
        run.progress.done = run.calibration_steps + run.steps * resume.epoch
        return learner, optimizer, resume.epoch
    started = time.perf_counter()
    stats = run.evaluate()
    run.baseline = {
        "accuracy": stats.accuracy,
        "loss": stats.loss,
        "flops": run.cost_model.cost(run.capacity, "flops"),
        "params": run.cost_model.cost(run.capacity, "params"),
    }
    run.progress.emit(
        "calibrating", message="measuring channel saliency", steps=run.calibration_steps
    )
    calibrate(
        run.model,
        run.data,
        learner,
        run.config,
        run.device,
        run.calibration_steps,
        run.progress,
        run.cancel,
    )
    learner.finish_calibration()
    run.timings["calibrating"] = time.perf_counter() - started
    return learner, optimizer, 0


def learn_structure(
    run: CompressionRun, learner: StructureLearner, optimizer: torch.optim.SGD, start_epoch: int
) -> None:
    """The structure-learning epochs after `start_epoch`, each ending in redistribution."""
    epochs = run.config.structure_epochs
    started = time.perf_counter()
    for epoch in range(start_epoch + 1, epochs + 1):
        record = run.run_epoch(
            "structure_learning",
            epoch,
            epochs,
            optimizer,
            lambda: {"flops": learner.cost("flops")},
            after_backward=learner.after_backward,
            distillation=run.distillation if run.config.distills_structure_learning else None,
        )
        # The masked network is evaluated (above) with the masks it trained under: after
        # redistribution its BN running statistics would belong to another structure.
        step = learner.redistribute(learner.release_at(epoch, epochs))
        record.update(
            flops=learner.cost("flops"),
            params=learner.cost("params"),
            proposed=_by_unit(run.units, step.proposed),
            allocation=_by_unit(run.units, step.allocation),
            active=_by_unit(run.units, step.allocation),
            learned_moves=step.learned_moves,
            fit_moved=step.fit_moved,
            reverted=step.reverted,
        )
        started = run.end_epoch(
            record, epochs, started, optimizer, lambda: {"learner": learner.state_dict()}
        )
    run.lap("structure_learning", started)


def _by_unit(units: list[UnitSpec], widths: list[int]) -> dict[str, int]:
    return {u.name: a for u, a in zip(units, widths, strict=True)}
