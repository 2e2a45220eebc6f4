"""Learning-rate schedules of weight learning, shared by the engine and the benchmarks so that
every compared method trains with exactly the same recipe."""

from __future__ import annotations

import torch

from pruning.config import FinetuneSchedule


def finetune_scheduler(
    optimizer: torch.optim.Optimizer, total_steps: int, kind: FinetuneSchedule
) -> torch.optim.lr_scheduler.LRScheduler:
    """ "step": the paper's lr ÷ 10 at 1/3 and 2/3 of the iterations; "cosine": a cosine decay
    from the starting lr to 0 over all iterations (stepped once per iteration)."""
    total = max(total_steps, 1)
    if kind == "step":
        milestones = sorted({max(1, total // 3), max(2, (2 * total) // 3)})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    raise ValueError(f"unknown fine-tuning schedule {kind!r}; use step or cosine")
