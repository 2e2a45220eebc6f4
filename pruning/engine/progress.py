"""Training steps turned into the run's overall fraction, reported through the run hooks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pruning.config import Phase, ProgressEvent, RunHooks


class RunProgress:
    """Turns training steps into the run's overall fraction. Every step is reported; the
    driver decides what to persist (the worker throttles, the CLI redraws)."""

    def __init__(self, hooks: RunHooks, total_steps: int):
        self.hooks = hooks
        self.total = max(total_steps, 1)
        self.done = 0

    def emit(self, phase: Phase, **kwargs: Any) -> None:
        if self.hooks.on_progress is not None:
            progress = min(self.done / self.total, 1.0)
            self.hooks.on_progress(ProgressEvent(phase=phase, progress=progress, **kwargs))

    def step_callback(
        self, phase: Phase, epoch: int, epochs: int, extra: Callable[[], dict[str, Any]]
    ) -> Callable[[int, int, float, float], None]:
        def on_step(step: int, steps: int, loss: float, accuracy: float) -> None:
            self.done += 1
            self.emit(
                phase,
                epoch=epoch,
                epochs=epochs,
                step=step,
                steps=steps,
                metrics={"loss": loss, "accuracy": accuracy, **extra()},
            )

        return on_step
