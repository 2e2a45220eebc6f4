"""How a job's run ends badly: the errors recorded with their one-line message, running out
of memory, a stalled training step (the pool process is replaced), and a lost lease."""

from __future__ import annotations

import logging
import os

from pruning.checkpoints import CheckpointError
from pruning.config import InvalidTarget
from pruning.data import DataError

# Errors a user causes with their files or parameters: recorded with their one-line message.
KNOWN_ERRORS: tuple[type[Exception], ...] = (InvalidTarget, DataError, CheckpointError, ValueError)

TRAINING_STALLED = "TrainingStalled"
# Exit status of a pool process that gave up on a stalled job: Celery's prefork pool starts a
# fresh process in its place, and the redelivered message finds the job already failed.
STALLED_EXIT_CODE = 70


def replace_process() -> None:
    """End this pool process at once: its stuck thread cannot be stopped any other way."""
    logging.shutdown()
    os._exit(STALLED_EXIT_CODE)


class LeaseLost(Exception):
    """Another delivery owns the job now; this one stops without writing."""


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (its type's name when it has none)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


OUT_OF_MEMORY = "OutOfMemory"
# How PyTorch's CPU allocator and CUDA say it (a RuntimeError, not a MemoryError, on the CPU).
_OOM_MARKERS = ("can't allocate memory", "not enough memory", "out of memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError (numpy's included), torch.OutOfMemoryError, or the CPU allocator failing."""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in _OOM_MARKERS)


def oom_message(exc: BaseException) -> str:
    """The reason recorded for a job that ran out of memory, with what to change."""
    return (
        "the job ran out of memory (a smaller batch_size or input size needs less): "
        f"{one_line(exc)}"
    )
