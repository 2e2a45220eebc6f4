"""Single-flight reads of the poll generation, each one started after its callers arrived.

`await gate.fresh()` joins the next read that has not started yet (starting one if none is
running), never one already in flight: a change committed before the call is therefore in
the value it returns. Under load, every poll that arrives while one read runs shares the
next, so the database sees about one small read per read-duration however many devices poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class FreshnessGate(Generic[T]):
    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._next: asyncio.Future[T] | None = None
        self._running = False
        self._task: asyncio.Task[None] | None = None  # held: the loop keeps only weak refs

    async def fresh(self) -> T:
        """The value of a read that started after this call."""
        if self._next is None:
            loop = asyncio.get_running_loop()
            self._next = loop.create_future()
            if not self._running:
                self._running = True
                self._task = loop.create_task(self._run())
        # shield: a poll that is cancelled must not cancel the read the others wait for.
        return await asyncio.shield(self._next)

    async def _run(self) -> None:
        try:
            # Let the polls that are already readable join this read before it starts.
            await asyncio.sleep(0)
            while self._next is not None:
                waiting, self._next = self._next, None
                try:
                    value = await self._read()
                except Exception as exc:  # every waiter falls back to the regular route
                    waiting.set_exception(exc)
                    # Retrieved by the waiters; keeps asyncio from logging it when none is left.
                    waiting.exception()
                else:
                    waiting.set_result(value)
        finally:
            self._running = False
