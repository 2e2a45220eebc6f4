"""Plain training and evaluation loops over in-memory tensors or lazily read `Samples`."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from edgeprune.contracts.limits import Precision
from pruning.config import Cancelled
from pruning.cpu_kernels import guard_cpu_kernels
from pruning.data.batches import iterate_batches
from pruning.data.samples import Samples
from pruning.data.types import Inputs
from pruning.distillation import Distillation
from pruning.precision import autocast, memory_format, plan, scaler

# Steps between reads of the loss and accuracy on a GPU (each read waits for the device).
SYNC_EVERY = 10


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def data_workers(requested: int | None, device: torch.device) -> int:
    """DataLoader workers for lazily read samples: the request, else 0 on a CPU and
    min(8, cores − 1) on a GPU."""
    if requested is not None:
        return requested
    if device.type == "cpu":
        return 0
    return max(0, min(8, (os.cpu_count() or 1) - 1))


def steps_per_epoch(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size


@dataclass
class EpochStats:
    loss: float
    accuracy: float


StepCallback = Callable[[int, int, float, float], None]


def train_one_epoch(
    model: nn.Module,
    x: Inputs,
    y: Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    generator: torch.Generator,
    augment: bool,
    device: torch.device,
    after_backward: Callable[[], None] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    on_step: StepCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    precision: Precision = "fp32",
    workers: int = 0,
    augment_fill: Tensor | None = None,
    distillation: Distillation | None = None,
) -> EpochStats:
    """One epoch of SGD. `after_backward` runs between backward and the optimiser step (the
    structure learner reads the gates' gradients there). With `distillation` the loss also
    follows a teacher's softened outputs (`pruning.distillation`); the reported loss is then
    that combined loss. Runs under the CPU kernel guard
    (`pruning.cpu_kernels`) and in the chosen precision (`pruning.precision`).

    Loss and accuracy are summed on the device and read back every `SYNC_EVERY` steps on a
    GPU (every step on the CPU, where reading costs nothing): `on_step` still runs every step,
    with the latest values read."""
    model.train()
    chosen = plan(precision, device)
    grad_scaler = scaler(chosen, device)
    sync_every = 1 if device.type == "cpu" else SYNC_EVERY
    loss_sum = torch.zeros((), device=device)
    correct_sum = torch.zeros((), dtype=torch.long, device=device)
    window_loss = torch.zeros((), device=device)
    window_correct = torch.zeros((), dtype=torch.long, device=device)
    seen = window_seen = 0
    last_loss = last_accuracy = float("nan")
    steps = steps_per_epoch(x.shape[0], batch_size)
    layout = memory_format(device)
    with guard_cpu_kernels(model, device):
        for step, (xb, yb) in enumerate(
            iterate_batches(
                x,
                y,
                batch_size,
                shuffle=True,
                augment=augment,
                generator=generator,
                workers=workers,
                pin_memory=device.type == "cuda",
                fill=augment_fill,
            ),
            start=1,
        ):
            if should_cancel is not None and should_cancel():
                raise Cancelled("canceled during training")
            xb = xb.to(device, non_blocking=True, memory_format=layout)
            yb = yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with autocast(chosen, device):
                logits = model(xb)
                if distillation is not None:
                    teacher_logits = distillation.teacher_logits(xb)
            if distillation is None:
                loss = F.cross_entropy(logits.float(), yb)
            else:
                loss = distillation.loss(logits.float(), teacher_logits, yb)
            if grad_scaler is not None:
                grad_scaler.scale(loss).backward()
            else:
                loss.backward()
            if after_backward is not None:
                after_backward()
            if grad_scaler is not None:
                grad_scaler.step(optimizer)
                grad_scaler.update()
            else:
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
            batch = yb.shape[0]
            batch_loss = loss.detach() * batch
            batch_correct = (logits.detach().argmax(1) == yb).sum()
            loss_sum += batch_loss
            correct_sum += batch_correct
            window_loss += batch_loss
            window_correct += batch_correct
            seen += batch
            window_seen += batch
            if step % sync_every == 0 or step == steps:
                last_loss = float(window_loss) / window_seen
                last_accuracy = int(window_correct) / window_seen
                # fp16's scaler skips steps with overflowing gradients itself.
                if grad_scaler is None and not math.isfinite(last_loss):
                    raise FloatingPointError(
                        f"training diverged: loss is {last_loss} by step {step}"
                    )
                window_loss.zero_()
                window_correct.zero_()
                window_seen = 0
            if on_step is not None:
                on_step(step, steps, last_loss, last_accuracy)
    return EpochStats(loss=float(loss_sum) / max(seen, 1), accuracy=int(correct_sum) / max(seen, 1))


def _head(x: Inputs, n: int) -> Inputs:
    return x.subset(slice(0, n)) if isinstance(x, Samples) else x[:n]


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: Inputs,
    y: Tensor,
    *,
    batch_size: int,
    device: torch.device,
    max_batches: int | None = None,
    workers: int = 0,
) -> EpochStats:
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    if max_batches is not None:  # read only what is evaluated
        x, y = _head(x, max_batches * batch_size), y[: max_batches * batch_size]
    batches = iterate_batches(
        x,
        y,
        batch_size,
        shuffle=False,
        augment=False,
        workers=workers,
        pin_memory=device.type == "cuda",
    )
    for index, (xb, yb) in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        xb, yb = xb.to(device, memory_format=memory_format(device)), yb.to(device)
        logits = model(xb)
        total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
        seen += yb.shape[0]
    model.train(was_training)
    return EpochStats(loss=total_loss / max(seen, 1), accuracy=correct / max(seen, 1))
