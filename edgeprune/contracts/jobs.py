"""A compression job's states and phases, as the REST API, the store, the worker, the engine,
the CLI and the dashboard name them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


TERMINAL_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})

# What a running job is doing, in the order a run goes through them. A Literal (not an enum)
# so that the engine's `ProgressEvent(phase="exporting")` is checked by mypy as written.
Phase = Literal["calibrating", "structure_learning", "pruning", "weight_learning", "exporting"]
PHASES: tuple[Phase, ...] = get_args(Phase)

# The two phases that train, one epoch at a time: the ones an epoch checkpoint resumes.
TrainingPhase = Literal["structure_learning", "weight_learning"]
TRAINING_PHASES: tuple[TrainingPhase, ...] = get_args(TrainingPhase)
