"""A per-client budget of failed authentications (`unauthenticated_rate_limit_per_minute`).

Past the budget, a client's failed attempts are answered 429 with `Retry-After` instead of
401, which slows token guessing and tells a misconfigured device to back off. Requests that
do carry a valid token still pass, so one broken device behind a shared NAT address does not
lock out the rest of the fleet. In-process and approximate by design: each API replica keeps
its own window (a proxy or WAF is the place for a global limit).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

WINDOW_S = 60.0
# Bounded memory under a spray of source addresses: the least recently seen are forgotten.
MAX_CLIENTS = 10_000


class FailedAuthLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _window(self, client: str, now: float) -> deque[float]:
        failures = self._failures.get(client)
        if failures is None:
            failures = self._failures[client] = deque()
            if len(self._failures) > MAX_CLIENTS:
                self._failures.popitem(last=False)
        self._failures.move_to_end(client)
        while failures and failures[0] <= now - WINDOW_S:
            failures.popleft()
        return failures

    def record_failure(self, client: str) -> float | None:
        """Count a failed attempt; returns seconds to wait when the budget is spent."""
        now = time.monotonic()
        with self._lock:
            failures = self._window(client, now)
            failures.append(now)
            if len(failures) <= self.per_minute:
                return None
            return max(failures[0] + WINDOW_S - now, 1.0)
