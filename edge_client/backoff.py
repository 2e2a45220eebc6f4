"""Retry delays (exponential backoff with jitter) and waits that end early on a stop signal."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from .errors import Interrupted


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number `failures` (1-based): `base * 2**(failures-1)`, capped, jittered.

    `jitter` is the random share of that ceiling: 1.0 is "full jitter" (uniform in
    [0, ceiling]), which spreads a fleet's retries best; 0.5 keeps half of it fixed, so
    a long-running loop never retries almost immediately by bad luck.
    """

    base: float = 1.0
    cap: float = 300.0
    jitter: float = 1.0
    # A server asking for more than this is treated as asking for this: a typo on the
    # server (Retry-After: 86400) must not silence a device for a day.
    max_retry_after: float = 3600.0

    def delay(self, failures: int, rng: random.Random, retry_after: float | None = None) -> float:
        ceiling = min(self.cap, self.base * 2 ** max(0, failures - 1))
        fixed = ceiling * (1.0 - self.jitter)
        delay = fixed + rng.uniform(0.0, ceiling - fixed)
        if retry_after is not None:
            # Retry-After is a floor: never come back sooner than the server asked.
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay


class Stopper:
    """The stop signal shared by the run loop, retries and downloads.

    Waits use `Event.wait(timeout)`, so a stop request ends them at once instead of after
    the full delay, and nothing ever spins.
    """

    def __init__(self, event: threading.Event | None = None) -> None:
        self.event = event or threading.Event()

    def stop(self) -> None:
        self.event.set()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()

    def check(self) -> None:
        if self.event.is_set():
            raise Interrupted("stopped")

    def sleep(self, seconds: float) -> None:
        """Wait `seconds`, or raise Interrupted as soon as a stop is requested."""
        if self.event.wait(max(0.0, seconds)):
            raise Interrupted("stopped")
