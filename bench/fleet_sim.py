"""Fleet simulation (issue 15): 10,000 devices polling one API process, and a promotion.

    python -m bench.fleet_sim [--quick] [--devices N] [--interval S] [--postgres URL]

The real API runs under uvicorn in a child process (as `edgeprune api` is deployed) on
SQLite and, with `--postgres`, on a fresh PostgreSQL database. The devices are registered
through the store's own write side; then every device is a virtual client in this process
that polls its deployment's manifest with `If-None-Match` every `--interval` seconds, each
interval jittered by ±`--jitter` (time is compressed: a 60 s poll interval of a real fleet
becomes a few seconds here, so the request rate is that of a much larger fleet). Polls share
`--connections` keep-alive connections on loopback (bench/fleet_client.py) and time out
after 10 s. Bounded: every phase has a fixed length.

1. warm-up: each device polls once (it has no model yet: 200) and starts its own clock;
2. steady state for `--steady` seconds: sustained poll rate, errors, latency, lateness
   (how long after its due time a poll was sent: the client or server falling behind),
   server CPU per poll;
3. promotion of a new version over HTTP (PUT /v1/deployments/{name}); staleness is the time
   from the PUT's answer until 50%, 99% and 100% of the devices have been answered with the
   new version, also in poll intervals (a device polls once per interval, so ~1 interval is
   the floor for 99% without push).

Writes `bench/results/fleet_sim.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import common
from bench.fleet_client import Connection
from bench.live_service import API_APP, ServerProcess, UvicornOptions, local_backend
from bench.loadgen import latency_summary
from bench.seed import Seeder, add_succeeded_job
from bench.service_throughput import postgres_database
from infra.store import devices as device_store

DEPLOYMENT = "fleet"
TIMEOUT_S = 10.0
REGISTER_BATCH = 500


@dataclass(frozen=True)
class Config:
    devices: int
    interval_s: float
    jitter: float
    connections: int
    steady_s: float
    after_s: float  # how long devices keep polling after the promotion (bounds staleness)
    postgres: str | None


@dataclass
class Device:
    token: str
    etag: str | None = None
    version: int | None = None
    # When it was first answered with each version (perf_counter): a poll that lands between
    # the promotion's commit and its answer already counts.
    got_at: dict[int, float] = field(default_factory=dict)


@dataclass
class Phase:
    """What the devices saw during one phase."""

    started: float = field(default_factory=time.perf_counter)
    latencies_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def error(self, message: str) -> None:
        self.errors += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(message)

    def summary(self, seconds: float, server_cpu_s: float | None = None) -> dict[str, Any]:
        polls = len(self.latencies_ms)
        late = latency_summary(self.late_ms)
        result = {
            "seconds": round(seconds, 2),
            "polls": polls,
            "polls_per_s": round(polls / seconds, 1) if seconds else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "error_samples": self.error_samples,
            **latency_summary(self.latencies_ms),
            "late_p50_ms": late["p50_ms"],
            "late_p99_ms": late["p99_ms"],
        }
        if server_cpu_s is not None and polls:
            result["server_cpu_ms_per_poll"] = round(server_cpu_s * 1000 / polls, 4)
        return result


class Fleet:
    def __init__(self, server: ServerProcess, devices: list[Device], config: Config) -> None:
        self.server = server
        self.devices = devices
        self.config = config
        self.path = f"/v1/deployments/{DEPLOYMENT}/manifest"
        self.pool: asyncio.Queue[Connection] = asyncio.Queue()
        host, port = "127.0.0.1", server.port
        self.connections = [Connection(host, port, TIMEOUT_S) for _ in range(config.connections)]
        for connection in self.connections:
            self.pool.put_nowait(connection)
        self.phase = Phase()
        self.target_version: int | None = None  # the promoted version
        self.promoted_at = 0.0  # when the promotion's PUT was answered (perf_counter)

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        connection = await self.pool.get()
        try:
            yield connection
        finally:
            self.pool.put_nowait(connection)

    async def poll(self, index: int, due: float) -> None:
        device = self.devices[index]
        headers = {"Authorization": f"Bearer {device.token}"}
        if device.etag is not None:
            headers["If-None-Match"] = device.etag
        phase = self.phase
        async with self.connection() as connection:
            sent = time.perf_counter()
            phase.late_ms.append(max(0.0, sent - due) * 1000)
            try:
                answer = await connection.get(self.path, headers)
            except Exception as exc:
                phase.latencies_ms.append((time.perf_counter() - sent) * 1000)
                phase.error(f"{type(exc).__name__}: {exc}")
                return
        phase.latencies_ms.append((time.perf_counter() - sent) * 1000)
        phase.statuses[answer.status] += 1
        if answer.status == 304:
            return
        if answer.status != 200 or answer.etag is None:
            phase.error(f"HTTP {answer.status}: {answer.body[:200]!r}")
            return
        version = int(json.loads(answer.body)["version"])
        if not answer.etag.decode().startswith(f'"{version}-'):
            phase.error(f"ETag {answer.etag!r} does not name version {version}")
            return
        device.etag, device.version = answer.etag.decode(), version
        device.got_at.setdefault(version, time.perf_counter())

    async def run_device(self, index: int, first_due: float, stop_at: float) -> None:
        interval, jitter = self.config.interval_s, self.config.jitter
        due = first_due
        while due < stop_at:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await self.poll(index, due)
            due += interval * random.uniform(1 - jitter, 1 + jitter)

    async def close(self) -> None:
        for connection in self.connections:
            await connection.close()


def register(seeder: Seeder, count: int) -> list[Device]:
    """`count` devices through the store's write side (one transaction per batch)."""
    devices = []
    for start in range(0, count, REGISTER_BATCH):
        with seeder.sessions() as session:
            for i in range(start, min(count, start + REGISTER_BATCH)):
                made = device_store.register(session, f"sim-{i:05d}", DEPLOYMENT)
                devices.append(Device(made.secret))
            session.commit()
    return devices


async def simulate(
    server: ServerProcess, devices: list[Device], config: Config, admin: str, job_id: str
) -> dict[str, Any]:
    fleet = Fleet(server, devices, config)
    result: dict[str, Any] = {}
    try:
        # 1. Warm-up: every device once, as fast as the connections allow.
        started = time.perf_counter()
        await asyncio.gather(*(fleet.poll(i, started) for i in range(len(devices))))
        result["warmup"] = fleet.phase.summary(time.perf_counter() - started)
        print(f"warm-up: {result['warmup']['polls_per_s']}/s errors {result['warmup']['errors']}")

        # 2. Steady state, then 3. the promotion while the devices keep polling.
        # The devices' state is built: keep the simulator's own full collections off it (a
        # pause here would show as lateness and staleness that the API did not cause).
        gc.collect()
        gc.freeze()
        fleet.phase = Phase()
        start = time.perf_counter()
        promote_at = start + config.steady_s
        stop_at = promote_at + config.after_s
        tasks = [
            asyncio.create_task(
                fleet.run_device(i, start + random.uniform(0, config.interval_s), stop_at)
            )
            for i in range(len(devices))
        ]
        cpu_before, client_before = server.cpu_seconds(), time.process_time()
        await asyncio.sleep(max(0.0, promote_at - time.perf_counter()))
        steady_s = time.perf_counter() - start
        result["steady"] = fleet.phase.summary(steady_s, server.cpu_seconds() - cpu_before)
        # The simulated devices' own CPU share: near 1.0, lateness is the client's, not the API's.
        result["steady"]["client_cpu_share"] = round(
            (time.process_time() - client_before) / steady_s, 2
        )
        print(f"steady: {json.dumps(result['steady'])}")

        fleet.phase = Phase()
        after_start = time.perf_counter()
        cpu_before = server.cpu_seconds()
        result["promotion"] = await promote(fleet, server.url, admin, job_id)
        await asyncio.gather(*tasks)
        after_s = time.perf_counter() - after_start
        result["after_promotion"] = fleet.phase.summary(after_s, server.cpu_seconds() - cpu_before)
        result["promotion"].update(staleness(fleet, config))
        print(f"promotion: {json.dumps(result['promotion'])}")
        result["reconnects"] = sum(c.reconnects for c in fleet.connections)
    finally:
        gc.unfreeze()
        await fleet.close()
    return result


async def promote(fleet: Fleet, url: str, admin: str, job_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        sent = time.perf_counter()
        response = await client.put(
            f"/v1/deployments/{DEPLOYMENT}",
            json={"job_id": job_id},
            headers={"Authorization": f"Bearer {admin}"},
        )
    response.raise_for_status()
    fleet.target_version = int(response.json()["current_version"])
    fleet.promoted_at = time.perf_counter()
    return {"version": fleet.target_version, "put_ms": round((fleet.promoted_at - sent) * 1000, 1)}


def staleness(fleet: Fleet, config: Config) -> dict[str, Any]:
    """Seconds from the promotion's answer until shares of the fleet had the new version."""
    target = fleet.target_version
    got = [d.got_at[target] for d in fleet.devices if target is not None and target in d.got_at]
    times = sorted(max(0.0, t - fleet.promoted_at) for t in got)
    total = len(fleet.devices)

    def share(fraction: float) -> float | None:
        needed = max(1, int(total * fraction + 0.999999))
        return round(times[needed - 1], 3) if len(times) >= needed else None

    seen_99 = share(0.99)
    return {
        "devices_updated": len(times),
        "devices": total,
        "seen_50_s": share(0.5),
        "seen_99_s": seen_99,
        "seen_100_s": share(1.0),
        "seen_99_in_intervals": round(seen_99 / config.interval_s, 3) if seen_99 else None,
    }


def run_database(label: str, database_url: str | None, config: Config) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgeprune-fleet-") as tmp:
        backend = local_backend(Path(tmp), database_url=database_url)
        log = Path(tmp) / "api.log"
        with ServerProcess(API_APP, backend.env(), UvicornOptions(), log_path=log) as server:
            seeder = Seeder(backend.database_url, backend.artifacts_url)
            try:
                admin = seeder.admin_token()
                seeder.publish(DEPLOYMENT, os.urandom(64 * 1024), os.urandom(128 * 1024))
                inputs = seeder.job_inputs()
                job = add_succeeded_job(
                    seeder.sessions, seeder.storage, inputs, os.urandom(64 * 1024), b"base"
                )
                started = time.perf_counter()
                devices = register(seeder, config.devices)
                print(f"[{label}] {len(devices)} devices in {time.perf_counter() - started:.1f} s")
                result = _run_loop(simulate(server, devices, config, admin, job.job_id))
            finally:
                seeder.close()
        return {"database": label, **result}


def _run_loop(main: Any) -> dict[str, Any]:
    import uvloop

    # The same loop the server uses: the client's own cost per poll stays small.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        result: dict[str, Any] = runner.run(main)
    return result


def run(config: Config) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "benchmark": "fleet_sim",
        "environment": common.environment(),
        "config": {
            "devices": config.devices,
            "interval_s": config.interval_s,
            "jitter": config.jitter,
            "connections": config.connections,
            "steady_s": config.steady_s,
            "after_s": config.after_s,
            "offered_polls_per_s": round(config.devices / config.interval_s, 1),
            "uvicorn": UvicornOptions().as_dict(),
        },
        "runs": {},
    }
    started = time.monotonic()
    payload["runs"]["sqlite"] = run_database("sqlite", None, config)
    if config.postgres:
        with postgres_database(config.postgres) as url:
            payload["runs"]["postgresql"] = run_database("postgresql", url, config)
    payload["environment"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    payload["wall_s"] = round(time.monotonic() - started, 1)
    return payload


def parse_args(argv: list[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1,000 devices, short phases")
    parser.add_argument("--devices", type=int)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    parser.add_argument("--jitter", type=float, default=0.2, help="± share of the interval")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--steady", type=float, help="seconds of steady state")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (admin URL)")
    args = parser.parse_args(argv)
    if not 0 <= args.jitter < 1:
        parser.error("--jitter must be in [0, 1)")
    return Config(
        devices=args.devices or (1_000 if args.quick else 10_000),
        interval_s=args.interval,
        jitter=args.jitter,
        connections=args.connections,
        steady_s=args.steady or (5.0 if args.quick else 20.0),
        # Long enough for every device to poll twice after the promotion.
        after_s=2 * args.interval * (1 + args.jitter) + 1.0,
        postgres=args.postgres,
    )


def main(argv: list[str] | None = None) -> None:
    common.save("fleet_sim", run(parse_args(argv)))


if __name__ == "__main__":
    main()
