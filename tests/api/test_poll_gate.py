"""The poll path's freshness gate: a caller gets the value of a read that started after it
arrived, and callers that arrive together share one read."""

from __future__ import annotations

import asyncio

from service.api.poll.gate import FreshnessGate


class _Counter:
    """A 'database' whose value is the number of commits so far; reads take a while."""

    def __init__(self) -> None:
        self.commits = 0
        self.reads = 0
        self.in_read = asyncio.Event()
        self.release = asyncio.Event()

    async def read(self) -> int:
        self.reads += 1
        seen = self.commits  # the value is taken when the read starts
        self.in_read.set()
        await self.release.wait()
        self.release.clear()
        self.in_read.clear()
        return seen


async def _scenario() -> None:
    db = _Counter()
    gate = FreshnessGate(db.read)
    first = asyncio.create_task(gate.fresh())
    await db.in_read.wait()  # a read of 0 commits is in flight
    db.commits = 1  # a change commits while it runs
    late = [asyncio.create_task(gate.fresh()) for _ in range(5)]
    await asyncio.sleep(0)
    db.release.set()
    assert await first == 0
    await db.in_read.wait()  # the late callers' read: one for all five
    db.release.set()
    assert await asyncio.gather(*late) == [1] * 5
    assert db.reads == 2


async def _failure() -> None:
    async def broken() -> int:
        raise OSError("database gone")

    gate = FreshnessGate(broken)
    results = await asyncio.gather(gate.fresh(), gate.fresh(), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)


def test_a_caller_never_gets_a_read_that_started_before_it() -> None:
    asyncio.run(_scenario())


def test_a_failed_read_fails_every_caller_that_waited_for_it() -> None:
    asyncio.run(_failure())
