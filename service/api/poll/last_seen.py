"""Devices' last-seen times, coalesced in memory and written in batches.

A device's first poll seen by a process is written at once by the lookup that learns its
token (so a device shows up as online after its first poll); after that, a poll only notes
the time here, and `write` puts the noted times in one statement. As before, a device's
row is written at most once per `resolution`: 10,000 devices polling every minute cost one
batched write every few seconds instead of one write per poll.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from infra.store import devices as device_store


class LastSeen:
    def __init__(self, resolution: timedelta) -> None:
        self._resolution_s = resolution.total_seconds()
        self._written: dict[str, float] = {}  # device id → when its row was last written
        self._pending: dict[str, float] = {}  # device id → its latest poll not yet written

    def written(self, device_id: str, at: datetime | None) -> None:
        """The device's row holds `at` already (read, or written, by the token lookup)."""
        if at is not None:
            if at.tzinfo is None:
                at = at.replace(tzinfo=UTC)  # SQLite gives naive datetimes back; we store UTC
            self._written[device_id] = at.timestamp()

    def due(self, device_id: str) -> bool:
        """Whether the device's row is older than the resolution (or was never written)."""
        return time.time() - self._written.get(device_id, 0.0) >= self._resolution_s

    def seen(self, device_id: str) -> None:
        if self.due(device_id):
            self._pending[device_id] = time.time()

    def take(self) -> dict[str, float]:
        """The pending times, handed over for `write` (on the event loop, which notes them)."""
        pending, self._pending = self._pending, {}
        return pending

    def write(self, engine: Engine, pending: dict[str, float]) -> None:
        """Write `pending` in one executemany (in a worker thread)."""
        if not pending:
            return
        seen = {device: datetime.fromtimestamp(at, UTC) for device, at in pending.items()}
        try:
            with engine.begin() as connection:
                device_store.record_seen(connection, seen)
        except Exception:
            # Kept for the next flush unless a newer poll was noted meanwhile.
            for device, at in pending.items():
                self._pending.setdefault(device, at)
            raise
        self._written.update(pending)
