"""Start and stop real `edgeprune worker` processes for integration tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

WORKER_COMMAND = [sys.executable, "-m", "edgeprune", "worker"]


class WorkerProcess:
    """One worker (and its pool processes) in its own process group."""

    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "gpu") -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [*WORKER_COMMAND, "--queues", queues, "--concurrency", "1", "--log-level", "info"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole group: what a machine or container dying looks like."""
        self._signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self, grace: float = 10.0) -> None:
        self._signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        self._signal(signal.SIGKILL)  # pool processes too
        if self.process.poll() is None:
            self.process.wait(timeout=30)
        self._log.close()

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def wait_for(
    predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2
) -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
