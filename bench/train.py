"""The one training recipe every benchmarked method shares, so that only the method differs.

It is the engine's weight-learning recipe (SGD with momentum, lr ÷ 10 at 1/3 and 2/3 of the
iterations, shift-and-mirror augmentation); pretraining and training from scratch use it with
a larger starting lr.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from pruning.distillation import Distillation
from pruning.engine import TaskTensors
from pruning.engine.schedules import finetune_scheduler
from pruning.training import evaluate, steps_per_epoch, train_one_epoch


@dataclass(frozen=True)
class Recipe:
    lr: float
    batch_size: int = 64
    momentum: float = 0.9
    weight_decay: float = 1e-4
    augment: bool = True
    # "step": ÷10 at 1/3 and 2/3 (fine-tuning); "onecycle": warm-up then anneal, which is
    # what `pruning.pretrain` uses and what trains a network from scratch in few epochs.
    schedule: str = "step"


def train(
    model: nn.Module,
    task: TaskTensors,
    epochs: int,
    recipe: Recipe,
    seed: int,
    teacher: Distillation | None = None,
) -> float:
    """Train in place for `epochs`, following `teacher`'s softened outputs too when given;
    returns the wall time in seconds."""
    started = time.perf_counter()
    if epochs < 1:
        return 0.0
    device = next(model.parameters()).device
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        weight_decay=recipe.weight_decay,
    )
    steps = steps_per_epoch(task.x_train.shape[0], recipe.batch_size)
    scheduler: torch.optim.lr_scheduler.LRScheduler
    if recipe.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=recipe.lr, total_steps=epochs * steps
        )
    else:
        scheduler = finetune_scheduler(optimizer, epochs * steps, recipe.schedule)  # type: ignore[arg-type]
    for epoch in range(1, epochs + 1):
        train_one_epoch(
            model,
            task.x_train,
            task.y_train,
            optimizer=optimizer,
            batch_size=recipe.batch_size,
            # Same shuffling for every method of a seed: the methods differ, not the batches.
            generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch),
            augment=recipe.augment,
            device=device,
            scheduler=scheduler,
            distillation=teacher,
        )
    return time.perf_counter() - started


def accuracy(model: nn.Module, task: TaskTensors) -> float:
    device = next(model.parameters()).device
    return evaluate(model, task.x_test, task.y_test, batch_size=256, device=device).accuracy
