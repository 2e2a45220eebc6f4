"""A rich progress bar per phase for the command line, on stderr: stdout carries only the
result (lines, or with --json one JSON object)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from edgeprune.contracts.jobs import PHASES
from pruning.config import ProgressEvent, RunHooks


class RichProgress:
    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<20}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._progress.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.__exit__(exc_type, exc, tb)

    def hooks(self) -> RunHooks:
        return RunHooks(on_progress=self.update)

    def update(self, event: ProgressEvent) -> None:
        phase = event.phase
        if phase not in self._tasks:
            # Earlier phases are complete once a later one starts.
            for done in PHASES[: PHASES.index(phase)]:
                if done in self._tasks:
                    task = self._progress.tasks[self._tasks[done]]
                    self._progress.update(self._tasks[done], completed=task.total)
            self._tasks[phase] = self._progress.add_task(phase, total=1, info="")
        task_id = self._tasks[phase]
        if event.steps is not None and event.step is not None:
            epochs = event.epochs or 1
            epoch = event.epoch or 1
            total = event.steps * epochs
            info = " ".join(f"{k} {v:.4g}" for k, v in event.metrics.items() if k != "params")
            if event.epoch is not None:
                info = f"epoch {epoch}/{epochs} {info}"
            self._progress.update(
                task_id, total=total, completed=(epoch - 1) * event.steps + event.step, info=info
            )
        elif event.phase in ("pruning", "exporting"):
            self._progress.update(task_id, total=1, completed=1, info=event.message or "")
