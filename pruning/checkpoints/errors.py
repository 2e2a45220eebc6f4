"""What goes wrong with a checkpoint, in one line a user can act on."""

from __future__ import annotations

from dataclasses import dataclass


class CheckpointError(ValueError):
    """The file is not a checkpoint we can read (one-line reason)."""


class CheckpointMismatch(CheckpointError):
    """The checkpoint's tensors do not fit the model."""


@dataclass(frozen=True)
class LoadReport:
    """What `load_into` loaded, and which head keys kept the model's fresh init."""

    loaded_keys: int
    head_reinitialised: bool = False
    skipped_keys: tuple[str, ...] = ()


def first_line(exc: BaseException) -> str:
    """An exception's first line, short enough for a one-line error."""
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line[:200]
