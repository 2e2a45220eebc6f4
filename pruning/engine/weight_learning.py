"""Step 4 of a compression run: weight learning of the compact network, from its start
or from an epoch checkpoint."""

from __future__ import annotations

import time

import torch

from pruning.config import Cancelled
from pruning.engine.resume import ResumeState
from pruning.engine.run import CompressionRun
from pruning.engine.schedules import finetune_scheduler
from pruning.models.registry import ModelSpec, build_model
from pruning.precision import prepare_for


def weight_learning_optimiser(
    run: CompressionRun,
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LRScheduler]:
    """Weight learning's optimiser and its learning-rate schedule over every step."""
    optimizer = run.sgd(run.config.lr)
    total = run.config.finetune_epochs * run.steps
    return optimizer, finetune_scheduler(optimizer, total, run.config.finetune_schedule)


def resume_weight_learning(
    run: CompressionRun, resume: ResumeState
) -> tuple[ModelSpec, float, torch.optim.SGD, torch.optim.lr_scheduler.LRScheduler]:
    """The compact network rebuilt from a weight-learning checkpoint, with its optimiser,
    schedule and the removal's self-check."""
    assert resume.spec is not None and resume.scheduler is not None
    assert resume.self_check is not None
    run.restore(resume)
    pruned_spec = ModelSpec.from_json(resume.spec)
    run.model = prepare_for(build_model(pruned_spec).to(run.device), run.device)
    run.model.load_state_dict(resume.model)
    optimizer, scheduler = weight_learning_optimiser(run)
    optimizer.load_state_dict(resume.optimizer)
    scheduler.load_state_dict(resume.scheduler)
    done = run.config.structure_epochs + resume.epoch
    run.progress.done = run.calibration_steps + run.steps * done
    return pruned_spec, resume.self_check, optimizer, scheduler


def learn_weights(
    run: CompressionRun,
    pruned_spec: ModelSpec,
    diff: float,
    optimizer: torch.optim.SGD,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    start_epoch: int,
) -> None:
    """The weight-learning epochs after `start_epoch`; honours a cancel at the end."""
    epochs = run.config.finetune_epochs
    widths = list(pruned_spec.widths or run.capacity)
    flops = run.cost_model.cost(widths, "flops")
    params = run.cost_model.cost(widths, "params")
    started = time.perf_counter()
    for epoch in range(start_epoch + 1, epochs + 1):
        record = run.run_epoch(
            "weight_learning",
            epoch,
            epochs,
            optimizer,
            lambda: {"flops": flops},
            scheduler=scheduler,
            distillation=run.distillation,
        )
        record.update(flops=flops, params=params)
        started = run.end_epoch(
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
    run.lap("weight_learning", started)
    if run.cancel is not None and run.cancel():
        raise Cancelled("canceled after weight learning")
