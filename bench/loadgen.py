"""A closed-loop asyncio load generator on httpx, bounded in time and in request count.

Each simulated client owns one keep-alive connection (its own `AsyncClient`, as a device
would) and sends its next request as soon as the previous answer is in: no think time, so
the latency figures include the time a request waits in the server's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

# Returns a description of what is wrong with a response, or None when it is right.
Check = Callable[[httpx.Response], str | None]
MAX_ERROR_SAMPLES = 10


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float | None]:
    if not latencies_ms:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None, "max_ms": None}
    values = np.asarray(latencies_ms, dtype=float)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
        "mean_ms": round(float(values.mean()), 3),
        "max_ms": round(float(values.max()), 3),
    }


@dataclass
class LoadStats:
    clients: int
    duration_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return len(self.latencies_ms)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES:
            self.error_samples.append(message)

    def summary(self) -> dict[str, Any]:
        """`requests` counts every attempt; `ok` those answered as expected, and only those
        make `ok_per_s` (a request that timed out is not throughput)."""
        ok = self.requests - self.errors
        return {
            "clients": self.clients,
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "ok": ok,
            "ok_per_s": round(ok / self.duration_s, 1) if self.duration_s else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "error_samples": self.error_samples,
            **latency_summary(self.latencies_ms),
        }


@dataclass(frozen=True)
class PollPlan:
    """What each client polls. Client i uses `tokens[i % len(tokens)]`. Polls carry
    If-None-Match: `etag` except a client's first poll when `first_unconditional` (a device
    that has no model yet) and every `unconditional_every`-th poll (0: never)."""

    path: str
    tokens: Sequence[str]
    etag: str | None
    unconditional_every: int = 0
    first_unconditional: bool = False
    expected: frozenset[int] = frozenset({200, 304})

    def headers(self, client: int, poll: int) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[client % len(self.tokens)]}"}
        unconditional = (self.first_unconditional and poll == 0) or (
            self.unconditional_every > 0 and (poll + 1) % self.unconditional_every == 0
        )
        if self.etag is not None and not unconditional:
            headers["If-None-Match"] = self.etag
        return headers


def _client(
    base_url: str, tls: ssl.SSLContext, timeout_s: float, connections: int = 1
) -> httpx.AsyncClient:
    # One shared TLS context: building one per client (httpx's default) loads the CA bundle
    # each time, tens of ms of CPU per client, although loopback is plain HTTP.
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits, verify=tls)


async def _poller(
    client: httpx.AsyncClient,
    plan: PollPlan,
    client_no: int,
    stop_at: float,
    budget: list[int],
    stats: LoadStats | None,
    check: Check | None,
) -> None:
    poll = 0
    while time.perf_counter() < stop_at and budget[0] > 0:
        budget[0] -= 1
        headers = plan.headers(client_no, poll)
        poll += 1
        start = time.perf_counter()
        try:
            response = await client.get(plan.path, headers=headers)
        except httpx.HTTPError as exc:
            if stats is not None:
                stats.latencies_ms.append((time.perf_counter() - start) * 1000)
                stats.error(f"{type(exc).__name__}: {exc}")
            continue
        if stats is None:  # warm-up
            continue
        stats.latencies_ms.append((time.perf_counter() - start) * 1000)
        stats.statuses[response.status_code] += 1
        if response.status_code not in plan.expected:
            stats.error(f"HTTP {response.status_code}: {response.text[:200]}")
        elif check is not None and (problem := check(response)):
            stats.error(problem)


async def poll_load(
    base_url: str,
    plan: PollPlan,
    *,
    clients: int,
    duration_s: float,
    max_requests: int,
    warmup_s: float = 0.0,
    check: Check | None = None,
    timeout_s: float = 30.0,
) -> LoadStats:
    """`clients` concurrent pollers for `duration_s` (or until `max_requests` are sent).

    The clients are built, and their connections opened by the warm-up, before the clock
    starts; the warm-up's answers are not counted.
    """
    tls = ssl.create_default_context()
    async with contextlib.AsyncExitStack() as stack:
        pool = [
            await stack.enter_async_context(_client(base_url, tls, timeout_s))
            for _ in range(clients)
        ]
        if warmup_s > 0:
            stop = time.perf_counter() + warmup_s
            budget = [max_requests]
            await asyncio.gather(
                *(_poller(c, plan, i, stop, budget, None, None) for i, c in enumerate(pool))
            )
        stats = LoadStats(clients=clients)
        budget = [max_requests]  # shared by the pollers of this run (one event loop, no locks)
        start = time.perf_counter()
        stop_at = start + duration_s
        await asyncio.gather(
            *(_poller(c, plan, i, stop_at, budget, stats, check) for i, c in enumerate(pool))
        )
        stats.duration_s = time.perf_counter() - start
    return stats


@dataclass(frozen=True)
class Submission:
    """One POST /v1/jobs as the client saw it (perf_counter seconds)."""

    sent_at: float
    done_at: float
    status: int
    job_id: str | None

    @property
    def latency_ms(self) -> float:
        return (self.done_at - self.sent_at) * 1000


def job_body(model_id: str, dataset_id: str, seed: int) -> dict[str, Any]:
    target = {"metric": "flops", "reduction": 0.5}
    return {"model_id": model_id, "dataset_id": dataset_id, "target": target, "seed": seed}


async def _submit(client: httpx.AsyncClient, body: dict[str, Any]) -> Submission:
    sent = time.perf_counter()
    try:
        response = await client.post("/v1/jobs", json=body)
    except httpx.HTTPError:
        return Submission(sent, time.perf_counter(), 0, None)
    done = time.perf_counter()
    job_id = response.json().get("id") if response.status_code == 202 else None
    return Submission(sent, done, response.status_code, job_id)


async def submit_jobs(
    base_url: str,
    admin_token: str,
    bodies: Sequence[dict[str, Any]],
    *,
    concurrent: bool,
    timeout_s: float = 60.0,
) -> list[Submission]:
    """POST every body to /v1/jobs: one after another, or all at once (one connection each)."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    limits = httpx.Limits(max_connections=len(bodies) if concurrent else 1)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=timeout_s, limits=limits
    ) as client:
        if concurrent:
            return list(await asyncio.gather(*(_submit(client, b) for b in bodies)))
        return [await _submit(client, b) for b in bodies]


async def register_devices(
    base_url: str, admin_token: str, deployment: str, count: int, *, concurrency: int = 16
) -> list[str]:
    """Register `count` devices through POST /v1/devices; returns their tokens."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)

    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=30.0, limits=limits
    ) as client:

        async def register(i: int) -> str:
            async with gate:
                body = {"name": f"sim-{i:04d}", "deployment": deployment}
                response = await client.post("/v1/devices", json=body)
            response.raise_for_status()
            token: str = response.json()["token"]
            return token

        return list(await asyncio.gather(*(register(i) for i in range(count))))
