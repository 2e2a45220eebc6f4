"""Where a manifest poll's time goes: SQL statements, thread hops and time per part.

    python -m bench.manifest_cost [--postgres URL] [--requests N]

The real app runs in this process (its lifespan entered directly, requests sent through
`httpx.ASGITransport`, so no socket and no second process), seeded like
`bench.service_throughput`. For each kind of poll (device token 304/200, admin token 304,
a device's first poll of the minute) it counts the SQL statements the engine executes and
the calls into the thread pool (`anyio.to_thread.run_sync`: every sync dependency and the
sync route are one hop each). It then times, one request at a time, the whole request and
the store calls the route makes, against the bare app, and writes
`bench/results/manifest_cost.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import io
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from bench import common, manifest_whatif
from bench.bare_app import ETAG as BARE_ETAG
from bench.bare_app import create_bare_app
from bench.live_service import local_backend
from bench.seed import Published, Seeder
from bench.service_throughput import postgres_database
from service.api import access, crud
from service.api.main import create_app
from service.settings import Settings
from service.store.models import Device
from service.store.tokens import create_token, lookup_token

DEPLOYMENT = "bench"
PATH = f"/v1/deployments/{DEPLOYMENT}/manifest"


class Probe:
    """Counts SQL statements (with their text) and thread-pool hops while active."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[str] = []
        self.hops: list[str] = []
        self.active = False
        event.listen(engine, "before_cursor_execute", self._on_execute)
        self._run_sync = anyio.to_thread.run_sync
        anyio.to_thread.run_sync = self._counting_run_sync  # type: ignore[assignment]

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.active:
            self.statements.append(" ".join(statement.split())[:160])

    async def _counting_run_sync(self, func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        if self.active:
            self.hops.append(_hop_name(func))
        return await self._run_sync(func, *args, **kw)

    def close(self) -> None:
        anyio.to_thread.run_sync = self._run_sync

    async def measure(self, send: Callable[[], Awaitable[httpx.Response]]) -> dict[str, Any]:
        self.statements, self.hops, self.active = [], [], True
        try:
            response = await send()
        finally:
            self.active = False
        return {
            "status": response.status_code,
            "sql_statements": len(self.statements),
            "statements": self.statements,
            "thread_hops": len(self.hops),
            "hops": self.hops,
        }


def _hop_name(func: Callable[..., Any]) -> str:
    if isinstance(func, functools.partial):
        inner = func.keywords.get("function", func.func)  # FastAPI's sync endpoint wrapper
        return str(getattr(inner, "__qualname__", inner))
    return str(getattr(func, "__qualname__", func))


def _device_token(sessions: sessionmaker[Session]) -> str:
    with sessions() as session:
        device = Device(name="probe", deployment=DEPLOYMENT)
        session.add(device)
        session.flush()
        _, secret = create_token(session, "probe", kind="device", device_id=device.id)
        session.commit()
    return secret


class Timing:
    """Wall time per call (median) and process CPU time per call (mean over the batch: it
    counts the thread pool's threads too, and not the time spent waiting for a CPU)."""

    def __init__(self) -> None:
        self.wall_us: list[float] = []
        self.cpu_s = 0.0

    def add(self, wall_us: list[float], cpu_s: float) -> None:
        self.wall_us += wall_us
        self.cpu_s += cpu_s

    def summary(self) -> dict[str, float]:
        return {
            "wall_median_us": round(statistics.median(self.wall_us), 1),
            "cpu_us_per_call": round(self.cpu_s * 1e6 / len(self.wall_us), 1),
        }


async def _sample(send: Callable[[], Awaitable[httpx.Response]], n: int, into: Timing) -> None:
    times = []
    cpu = time.process_time()
    for _ in range(n):
        start = time.perf_counter()
        await send()
        times.append((time.perf_counter() - start) * 1e6)
    into.add(times, time.process_time() - cpu)


def _store_parts(
    sessions: sessionmaker[Session], secret: str, n: int
) -> tuple[dict[str, dict[str, float]], str]:
    """The route's store calls one by one (median µs over n), and a profile of them all."""

    def session_only() -> None:
        with sessions() as session:
            session.connection()

    def token() -> None:
        with sessions() as session:
            lookup_token(session, secret)

    def token_device() -> None:
        with sessions() as session:
            tok = lookup_token(session, secret)
            assert tok is not None
            access.require_deployment(session, tok, DEPLOYMENT)

    def manifest_row() -> None:
        with sessions() as session:
            crud.manifest_row(session, DEPLOYMENT)

    def manifest_row_prebuilt() -> None:
        with sessions() as session:
            manifest_whatif.prebuilt_manifest_row(session, DEPLOYMENT)

    def whole_chain() -> None:
        with sessions() as session:
            tok = lookup_token(session, secret)
            assert tok is not None
            device = access.require_deployment(session, tok, DEPLOYMENT)
            if device is not None:
                access.touch_device(session, device)
            crud.manifest_row(session, DEPLOYMENT)

    parts = {
        "session_open_close": session_only,
        "session_token_lookup": token,
        "session_token_device": token_device,
        "session_manifest_row": manifest_row,
        "session_manifest_row_prebuilt": manifest_row_prebuilt,
        "session_whole_store_chain": whole_chain,
    }
    result = {}
    for name, fn in parts.items():
        for _ in range(20):
            fn()
        timing, times = Timing(), []
        cpu = time.process_time()
        for _ in range(n):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e6)
        timing.add(times, time.process_time() - cpu)
        result[name] = timing.summary()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        whole_chain()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    return result, out.getvalue()


async def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")


async def measure(database_url: str | None, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgeprune-cost-") as tmp:
        backend = local_backend(Path(tmp), database_url=database_url)
        settings = Settings(
            data_dir=backend.data_dir,
            database_url=backend.database_url,
            broker_url=backend.broker_url,
            artifacts_url=backend.artifacts_url,
            reconcile_interval_s=3600.0,
        )
        app = create_app(settings)
        lifespan: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
        async with lifespan:
            seeder = Seeder(backend.database_url, backend.artifacts_url)
            try:
                return await _measure_app(app, seeder, n)
            finally:
                seeder.close()


VARIANTS = {
    "as_is": (False, False),
    "async_state_dependencies": (True, False),
    "prebuilt_statement": (False, True),
    "both_fixes": (True, True),
}


async def _variants(
    app: FastAPI, send: Callable[[], Awaitable[httpx.Response]], n: int, rounds: int = 5
) -> dict[str, dict[str, float]]:
    """Time of one device 304 poll per variant; rounds alternate the variants so a busy
    machine slows them all alike."""
    original = crud.manifest_row
    samples = {name: Timing() for name in VARIANTS}
    try:
        for _ in range(rounds):
            for name, (async_deps, prebuilt) in VARIANTS.items():
                app.dependency_overrides.clear()
                if async_deps:
                    manifest_whatif.async_state_dependencies(app)
                manifest_whatif.use_prebuilt_statement(prebuilt, original)
                await _sample(send, 20, Timing())  # warm-up
                await _sample(send, max(n // rounds, 1), samples[name])
    finally:
        app.dependency_overrides.clear()
        manifest_whatif.use_prebuilt_statement(False, original)
    return {name: timing.summary() for name, timing in samples.items()}


async def _measure_app(app: FastAPI, seeder: Seeder, n: int) -> dict[str, Any]:
    sessions: sessionmaker[Session] = app.state.sessions
    engine = sessions.kw["bind"]
    admin = seeder.admin_token()
    published: Published = seeder.publish(DEPLOYMENT, os.urandom(4096), os.urandom(8192))
    device = _device_token(sessions)
    probe = Probe(engine)

    def headers(token: str, etag: str | None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {token}"}
        return h | ({"If-None-Match": etag} if etag else {})

    async with await _client(app) as client, await _client(create_bare_app()) as bare:

        def device_304() -> Awaitable[httpx.Response]:
            return client.get(PATH, headers=headers(device, published.etag))

        calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
            "device_first_poll_304": device_304,
            "device_304": device_304,
            "device_200": lambda: client.get(PATH, headers=headers(device, None)),
            "admin_304": lambda: client.get(PATH, headers=headers(admin, published.etag)),
            "bare_304": lambda: bare.get(PATH, headers={"If-None-Match": BARE_ETAG}),
        }
        try:
            per_request = {name: await probe.measure(send) for name, send in calls.items()}
        finally:
            probe.close()
        del calls["device_first_poll_304"]
        timing: dict[str, Timing] = {}
        for name, send in calls.items():
            await _sample(send, 50, Timing())
            timing[name] = Timing()
            await _sample(send, n, timing[name])
        variants = await _variants(app, device_304, n)
    parts, profile = _store_parts(sessions, device, n)
    return {
        "per_request": per_request,
        "in_process": {name: t.summary() for name, t in timing.items()},
        "device_304_variants": variants,
        "store_parts": parts,
        "profile": profile,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Cost of one manifest poll.")
    parser.add_argument("--postgres", metavar="URL", help="also measure on PostgreSQL")
    parser.add_argument("--requests", type=int, default=1000, help="timed requests per kind")
    args = parser.parse_args(argv)
    payload: dict[str, Any] = {"benchmark": "manifest_cost", "environment": common.environment()}
    payload["sqlite"] = asyncio.run(measure(None, args.requests))
    if args.postgres:
        with postgres_database(args.postgres) as url:
            payload["postgresql"] = asyncio.run(measure(url, args.requests))
    for db in ("sqlite", "postgresql"):
        if db in payload:
            print(f"== {db}\n{payload[db]['profile']}")
    common.save("manifest_cost", payload)


if __name__ == "__main__":
    main()
