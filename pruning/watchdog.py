"""A stall watchdog for training runs.

A thread blocked inside a native kernel (a deadlocked OpenMP barrier, a hung driver call)
cannot be interrupted from Python: signals wait for the interpreter, and the interpreter
waits for the kernel. Such a run would hold its worker until the job's hard time limit. The
watchdog runs on its own thread, which keeps running because PyTorch releases the GIL in its
kernels; it notices that no training step has completed for `timeout` seconds and calls
`on_stall` once. The driver decides what that means: the CLI prints the reason and exits,
the Celery worker records the failure and replaces its process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from pruning.config import ProgressEvent, RunHooks


def stall_message(seconds: float) -> str:
    return (
        f"training stalled in a native kernel: no training step completed in {seconds:.0f} s "
        "(see docs/cpu-kernels.md)"
    )


class StallWatchdog:
    """Calls `on_stall(seconds_since_last_beat)` once when `beat()` has not been called for
    `timeout` seconds while the watchdog is running (a context manager)."""

    def __init__(
        self, timeout: float, on_stall: Callable[[float], None], poll: float | None = None
    ) -> None:
        if not timeout > 0:
            raise ValueError(f"stall timeout must be > 0, got {timeout}")
        self.timeout = timeout
        self.on_stall = on_stall
        self.poll = poll if poll is not None else min(5.0, timeout / 4)
        self.stalled = threading.Event()
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgeprune-watchdog", daemon=True)

    def beat(self) -> None:
        self._last = time.monotonic()

    def __enter__(self) -> StallWatchdog:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.poll + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.poll):
            idle = time.monotonic() - self._last
            if idle >= self.timeout:
                self.stalled.set()
                self.on_stall(idle)
                return

    def watch(self, hooks: RunHooks) -> RunHooks:
        """`hooks` with every progress event and cancel check counting as a beat: the engine
        makes both once per training step."""
        on_progress, should_cancel = hooks.on_progress, hooks.should_cancel

        def progress(event: ProgressEvent) -> None:
            self.beat()
            if on_progress is not None:
                on_progress(event)

        def cancel() -> bool:
            self.beat()
            return should_cancel() if should_cancel is not None else False

        return replace(hooks, on_progress=progress, should_cancel=cancel)
