"""A pool process that takes a job's message must start a run within `start_timeout_s`.

Before its run starts, a pool process only reads the queued jobs and compare-and-sets one to
`running`: milliseconds, or SQLite's busy timeout at worst. One still not started after
`start_timeout_s` is stuck, typically in native code waiting for a lock it will never get,
where no Python signal handler or thread can reach it. So the deadline is the kernel's: a
timer whose SIGALRM keeps its default action and ends the process. Celery's prefork pool
starts a fresh process in its place and, with `task_reject_on_worker_lost`, puts the message
back; the reconciler re-sends the job as well if the broker lost it. The run's heartbeat
meets the deadline (worker/hooks.py): from then on the heartbeat and the stall watchdog
watch the run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_armed = False


def arm(seconds: float) -> None:
    """End this process unless `disarm()` is called within `seconds` (main thread only:
    elsewhere, e.g. a task run in a thread by a test, nothing is armed)."""
    global _armed
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    _armed = True


def disarm() -> None:
    global _armed
    if _armed:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _armed = False


@contextmanager
def start_deadline(seconds: float) -> Iterator[None]:
    arm(seconds)
    try:
        yield
    finally:
        disarm()
