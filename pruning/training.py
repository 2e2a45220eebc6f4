"""Plain training and evaluation loops over in-memory tensors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pruning.config import Cancelled
from pruning.cpu_kernels import guard_cpu_kernels
from pruning.data.batches import iterate_batches


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size


@dataclass
class EpochStats:
    loss: float
    accuracy: float


StepCallback = Callable[[int, int, float, float], None]


def train_one_epoch(
    model: nn.Module,
    x: Tensor,
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
) -> EpochStats:
    """One epoch of SGD. `after_backward` runs between backward and the optimiser step (the
    structure learner reads the gates' gradients there). Runs under the CPU kernel guard
    (`pruning.cpu_kernels`)."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    steps = steps_per_epoch(x.shape[0], batch_size)
    with guard_cpu_kernels(model, device):
        for step, (xb, yb) in enumerate(
            iterate_batches(x, y, batch_size, shuffle=True, augment=augment, generator=generator),
            start=1,
        ):
            if should_cancel is not None and should_cancel():
                raise Cancelled("canceled during training")
            xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"training diverged: loss is {loss.item()} at step {step}")
            loss.backward()
            if after_backward is not None:
                after_backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            batch_loss = float(loss.detach())
            batch_correct = int((logits.detach().argmax(1) == yb).sum())
            total_loss += batch_loss * yb.shape[0]
            correct += batch_correct
            seen += yb.shape[0]
            if on_step is not None:
                on_step(step, steps, batch_loss, batch_correct / yb.shape[0])
    return EpochStats(loss=total_loss / max(seen, 1), accuracy=correct / max(seen, 1))


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    batch_size: int,
    device: torch.device,
    max_batches: int | None = None,
) -> EpochStats:
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    batches = iterate_batches(x, y, batch_size, shuffle=False, augment=False)
    for index, (xb, yb) in enumerate(batches):
        if max_batches is not None and index >= max_batches:
            break
        xb, yb = xb.to(device), yb.to(device)
        logits = model(xb)
        total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
        seen += yb.shape[0]
    model.train(was_training)
    return EpochStats(loss=total_loss / max(seen, 1), accuracy=correct / max(seen, 1))
