"""The compression run: calibrate → structure learning → channel removal → weight learning.

Works on an in-memory model and task data; loading files, export and the report are the
pipeline's job (`pruning.pipeline`). The phases are `pruning.engine.run.CompressionRun`.
"""

from __future__ import annotations

from torch import nn

from pruning.config import CompressConfig, RunHooks
from pruning.engine.channel_removal import remove_channels
from pruning.engine.limits import select_units
from pruning.engine.results import EngineResult, PruningMismatch, TaskTensors
from pruning.engine.resume import ResumeState
from pruning.engine.run import CompressionRun
from pruning.engine.structure_learning import learn_structure, start_structure_learning
from pruning.engine.weight_learning import (
    learn_weights,
    resume_weight_learning,
    weight_learning_optimiser,
)
from pruning.models.registry import ModelSpec

__all__ = [
    "EngineResult",
    "PruningMismatch",
    "TaskTensors",
    "compress_model",
    "select_units",
]


def compress_model(
    model: nn.Module,
    spec: ModelSpec,
    data: TaskTensors,
    config: CompressConfig,
    hooks: RunHooks | None = None,
) -> EngineResult:
    """Calibrate, learn the structure, remove channels, learn the weights; resumes from the
    hooks' last epoch checkpoint when there is one."""
    hooks = hooks or RunHooks()
    run = CompressionRun(model, spec, data, config, hooks)
    raw = hooks.load_checkpoint() if hooks.load_checkpoint is not None else None
    resume = ResumeState.from_dict(raw) if raw else None
    if resume is None or resume.phase == "structure_learning":
        learner, optimizer, start = start_structure_learning(run, resume)
        learn_structure(run, learner, optimizer, start)
        pruned_spec, diff = remove_channels(run, learner)
        ft_optimizer, scheduler = weight_learning_optimiser(run)
        ft_start = 0
    else:
        pruned_spec, diff, ft_optimizer, scheduler = resume_weight_learning(run, resume)
        ft_start = resume.epoch
    learn_weights(run, pruned_spec, diff, ft_optimizer, scheduler, ft_start)
    return run.result(pruned_spec, diff)
