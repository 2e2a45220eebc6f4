"""Train an unpruned model from scratch: checkpoints for demos, tests and benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from pruning.checkpoints import save_checkpoint
from pruning.data import load_task_data
from pruning.data.augmentation import background_fill, resolve_augment
from pruning.models.registry import ModelSpec, build_model
from pruning.training import evaluate, select_device, steps_per_epoch, train_one_epoch


@dataclass(frozen=True)
class PretrainResult:
    spec: ModelSpec
    accuracy: float
    loss: float
    path: Path


def pretrain(
    *,
    arch: str,
    data: str,
    epochs: int,
    out: Path,
    width_mult: float = 1.0,
    batch_size: int = 64,
    lr: float = 0.05,
    augment: bool | None = None,
    seed: int = 0,
    device: str = "auto",
    input_size: tuple[int, int] | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> PretrainResult:
    """SGD with momentum and a cosine schedule; saves `out` with its structure embedded.
    `augment` None: by the kind of data (pruning.data.augmentation)."""
    if epochs < 1:
        raise ValueError("epochs must be >= 1")
    torch.manual_seed(seed)
    task = load_task_data(data, input_size=input_size, seed=seed)
    spec = ModelSpec(
        arch=arch,
        in_channels=task.input_shape[0],
        num_classes=task.num_classes,
        width_mult=width_mult,
    )
    dev = select_device(device)
    shift_and_mirror = resolve_augment(augment, task.kind)
    fill = background_fill(task.mean, task.std)
    model = build_model(spec).to(dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    total = epochs * steps_per_epoch(task.x_train.shape[0], batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total)
    for epoch in range(1, epochs + 1):
        train_one_epoch(
            model,
            task.x_train,
            task.y_train,
            optimizer=optimizer,
            batch_size=batch_size,
            generator=torch.Generator().manual_seed(seed * 7919 + epoch),
            augment=shift_and_mirror,
            device=dev,
            scheduler=scheduler,
            augment_fill=fill,
        )
        stats = evaluate(model, task.x_test, task.y_test, batch_size=256, device=dev)
        if on_epoch is not None:
            on_epoch(epoch, stats.loss, stats.accuracy)
    save_checkpoint(out, model.cpu(), spec)
    return PretrainResult(spec=spec, accuracy=stats.accuracy, loss=stats.loss, path=out)
