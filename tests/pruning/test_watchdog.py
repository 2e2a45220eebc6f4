"""The stall watchdog notices a thread blocked in C, and stays quiet while steps complete."""

from __future__ import annotations

import ctypes
import threading
import time

import pytest

from pruning.config import ProgressEvent, RunHooks
from pruning.watchdog import StallWatchdog, stall_message

LIBC = ctypes.CDLL(None)


def test_a_thread_blocked_in_a_native_call_is_reported_once() -> None:
    calls: list[float] = []
    with StallWatchdog(0.3, calls.append, poll=0.02) as watchdog:
        LIBC.usleep(1_000_000)  # blocked in C with the GIL released, like a oneDNN kernel
    assert watchdog.stalled.is_set()
    assert len(calls) == 1 and 0.3 <= calls[0] < 1.0


def test_beats_keep_it_quiet() -> None:
    calls: list[float] = []
    with StallWatchdog(0.3, calls.append, poll=0.02) as watchdog:
        for _ in range(20):
            time.sleep(0.04)
            watchdog.beat()
    assert not calls and not watchdog.stalled.is_set()


def test_watched_hooks_beat_and_pass_through() -> None:
    seen: list[ProgressEvent] = []
    watchdog = StallWatchdog(60, lambda _: None)
    hooks = watchdog.watch(RunHooks(on_progress=seen.append, should_cancel=lambda: True))
    watchdog._last = 0.0
    assert hooks.should_cancel is not None and hooks.should_cancel() is True
    assert watchdog._last > 0.0
    watchdog._last = 0.0
    assert hooks.on_progress is not None
    hooks.on_progress(ProgressEvent(phase="calibrating", progress=0.0))
    assert watchdog._last > 0.0 and len(seen) == 1
    # Without a cancel check of the driver's own, the watched one answers False.
    assert watchdog.watch(RunHooks()).should_cancel() is False  # type: ignore[misc]


def test_stall_message_and_bad_timeout() -> None:
    assert stall_message(901.2).startswith("training stalled in a native kernel")
    assert "901 s" in stall_message(901.2)
    with pytest.raises(ValueError, match="stall timeout"):
        StallWatchdog(0, lambda _: None)
    assert threading.active_count() >= 1
