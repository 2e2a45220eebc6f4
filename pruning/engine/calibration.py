"""Step 0: Taylor scores with every channel active, before any channel is masked."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from pruning.config import Cancelled, CompressConfig
from pruning.cpu_kernels import guard_cpu_kernels
from pruning.data.batches import iterate_batches
from pruning.engine.progress import RunProgress
from pruning.engine.results import TaskTensors
from pruning.structure.learner import StructureLearner
from pruning.training import data_workers


def phase_generator(seed: int, phase_index: int, epoch: int) -> torch.Generator:
    # One generator per (phase, epoch): a resumed run shuffles exactly like an unbroken one.
    return torch.Generator().manual_seed(seed * 1_000_003 + phase_index * 10_007 + epoch)


def calibrate(
    model: nn.Module,
    data: TaskTensors,
    learner: StructureLearner,
    config: CompressConfig,
    device: torch.device,
    calibration_steps: int,
    progress: RunProgress,
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
        generator=phase_generator(config.seed, 0, 0),
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
