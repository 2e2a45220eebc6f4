"""Children of `edgeprune serve` end when serve does, even when serve is killed outright.

serve starts its API and workers in their own sessions (so that a terminal's Ctrl-C reaches
serve alone, which stops them in order). A SIGKILL to serve therefore left them running:
workers kept taking jobs for a service that was gone, and the next serve started a second
set. serve names itself in EDGEPRUNE_SUPERVISOR_PID; a child that sees it starts a thread
that notices when its parent changes and then stops its own process group as serve would
have (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

SUPERVISOR_ENV = "EDGEPRUNE_SUPERVISOR_PID"
POLL_S = 1.0
GRACE_S = 20.0


def follow_supervisor(poll_s: float = POLL_S, grace_s: float = GRACE_S) -> bool:
    """Start the watch when this process was started by serve; returns whether it did."""
    raw = os.environ.get(SUPERVISOR_ENV, "")
    if not raw.isdigit():
        return False
    supervisor = int(raw)
    if os.getppid() != supervisor:  # started by something else, or serve is already gone
        if _is_orphan(supervisor):
            _stop_group(grace_s)
        return False
    thread = threading.Thread(
        target=_watch, args=(supervisor, poll_s, grace_s), name="follow-supervisor", daemon=True
    )
    thread.start()
    return True


def _is_orphan(supervisor: int) -> bool:
    # Our parent is not serve: either serve died before we looked, or someone else started
    # us with the variable set (then leave the process alone).
    try:
        os.kill(supervisor, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _watch(supervisor: int, poll_s: float, grace_s: float) -> None:
    while os.getppid() == supervisor:
        time.sleep(poll_s)
    _stop_group(grace_s)


def _stop_group(grace_s: float) -> None:
    group = os.getpgrp()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    time.sleep(grace_s)  # still here: the shutdown hung
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
