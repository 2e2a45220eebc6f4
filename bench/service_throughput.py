"""Service throughput (issue 7, part 4): manifest polls and job submissions on loopback.

    python -m bench.service_throughput [--quick] [--postgres URL] [--redis URL]

The real API runs under uvicorn in a child process (`uvicorn service.api.main:create_app
--factory`), on SQLite and, with `--postgres`, on a fresh PostgreSQL database created from
URL (and dropped after). Next to it runs a bare FastAPI app (`bench/bare_app.py`) under the
same uvicorn settings. This process seeds a promoted deployment through the store, registers
one device per client, and drives both servers with `wrk` when it is installed (`--loadgen`;
one C thread saturates the bare endpoint, which the asyncio httpx generator cannot: it tops
out near 1,100 requests/s), else with the asyncio generator:

- manifest polls by `--clients` concurrent devices (one connection each, no think time;
  with wrk each request carries the next device's token, and a few polls per token are
  checked through httpx afterwards, since wrk only counts statuses), all conditional
  (`If-None-Match` = current ETag, so 304) or all unconditional (200), for
  `--duration` seconds after a warm-up; scenarios of the real and the bare app alternate so
  the ratio ours/bare compares the same minutes of a shared machine;
- job submission latency: `--jobs` POST /v1/jobs one after another, then `--jobs` at once
  (accepted only: no worker runs; the broker is the embedded SQLite transport or `--redis`).

Both servers' CPU time is read from /proc around each scenario: CPU ms per request is the
cost figure that survives a busy machine better than requests/s. Writes
`bench/results/service_throughput.json`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import common, wrk
from bench.bare_app import ETAG as BARE_ETAG
from bench.live_service import API_APP, BARE_APP, ServerProcess, UvicornOptions, local_backend
from bench.loadgen import (
    Check,
    PollPlan,
    Submission,
    job_body,
    latency_summary,
    poll_load,
    register_devices,
    submit_jobs,
)
from bench.seed import Published, Seeder

DEPLOYMENT = "bench"
# A poll that takes longer than this counts as an error (a device would give up and retry).
POLL_TIMEOUT_S = 10.0
VERSIONED = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "httpx", "sqlalchemy")


@dataclass(frozen=True)
class Config:
    clients: int
    duration_s: float
    warmup_s: float
    jobs: int
    options: UvicornOptions
    postgres: str | None
    redis: str | None
    api_app: str = API_APP
    loadgen: str = "python"  # or "wrk"

    @property
    def max_requests(self) -> int:
        # A hard cap next to the time bound: far above what loopback reaches on 2 cores.
        return int(self.duration_s * 50_000)


def manifest_check(published: Published) -> Check:
    def check(response: httpx.Response) -> str | None:
        if response.status_code == 304 and response.content:
            return f"304 with a {len(response.content)}-byte body"
        if response.status_code == 200 and response.json().get("sha256") != published.model_sha256:
            return f"200 with sha256 {response.json().get('sha256')!r}"
        return None

    return check


def _probe(server: ServerProcess, plan: PollPlan, check: Check | None) -> list[str]:
    """wrk counts statuses only: a few polls per token through httpx check the bodies."""
    problems = []
    with httpx.Client(base_url=server.url, timeout=POLL_TIMEOUT_S) as client:
        for i in range(min(len(plan.tokens), 20)):
            response = client.get(plan.path, headers=plan.headers(i, 0))
            if response.status_code not in plan.expected:
                problems.append(f"HTTP {response.status_code}: {response.text[:200]}")
            elif check is not None and (problem := check(response)):
                problems.append(problem)
    return problems


def _wrk_scenario(
    server: ServerProcess, plan: PollPlan, config: Config, check: Check | None
) -> dict[str, Any]:
    url = server.url + plan.path
    expected = frozenset({304}) if plan.etag is not None else frozenset({200})

    def load(seconds: float) -> dict[str, Any]:
        return wrk.run(
            url,
            plan.tokens,
            plan.etag,
            connections=config.clients,
            duration_s=seconds,
            expected=expected,
            timeout_s=POLL_TIMEOUT_S,
        )

    load(config.warmup_s)  # connections, caches and the server's allocator warmed up
    cpu_server = server.cpu_seconds()
    result = load(config.duration_s)
    server_cpu = server.cpu_seconds() - cpu_server
    problems = _probe(server, plan, check)
    result["errors"] += len(problems)
    result["error_samples"] += problems[:10]
    ok = result["ok"]
    result["server_cpu_ms_per_ok"] = round(server_cpu * 1000 / ok, 4) if ok else None
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return result


def _scenario(
    server: ServerProcess, plan: PollPlan, config: Config, check: Check | None
) -> dict[str, Any]:
    if config.loadgen == "wrk":
        return _wrk_scenario(server, plan, config, check)
    cpu_server, cpu_client = server.cpu_seconds(), time.process_time()
    stats = asyncio.run(
        poll_load(
            server.url,
            plan,
            clients=config.clients,
            duration_s=config.duration_s,
            max_requests=config.max_requests,
            warmup_s=config.warmup_s,
            check=check,
            timeout_s=POLL_TIMEOUT_S,
        )
    )
    server_cpu, client_cpu = server.cpu_seconds() - cpu_server, time.process_time() - cpu_client
    result = stats.summary()
    # Warm-up requests are inside the CPU window too: count them via the time share.
    share = config.duration_s / (config.duration_s + config.warmup_s)
    ok = result["ok"]
    result["server_cpu_ms_per_ok"] = round(server_cpu * share * 1000 / ok, 3) if ok else None
    result["client_cpu_ms_per_request"] = (
        round(client_cpu * share * 1000 / stats.requests, 3) if stats.requests else None
    )
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return result


def _ratio(ours: dict[str, Any], bare: dict[str, Any]) -> dict[str, float | None]:
    def div(key: str) -> float | None:
        a, b = ours.get(key), bare.get(key)
        return round(a / b, 3) if a and b else None

    return {
        "ok_per_s": div("ok_per_s"),
        "p50_ms": div("p50_ms"),
        "p99_ms": div("p99_ms"),
        "server_cpu_ms_per_ok": div("server_cpu_ms_per_ok"),
    }


def _submissions(subs: list[Submission]) -> dict[str, Any]:
    ok = [s for s in subs if s.status == 202]
    return {
        "n": len(subs),
        "accepted": len(ok),
        "distinct_ids": len({s.job_id for s in ok}),
        "wall_s": round(max(s.done_at for s in subs) - min(s.sent_at for s in subs), 3),
        **latency_summary([s.latency_ms for s in ok]),
    }


def _jobs(url: str, admin: str, seeder: Seeder, config: Config) -> dict[str, Any]:
    inputs = seeder.job_inputs()
    bodies = [job_body(inputs.model_id, inputs.dataset_id, seed) for seed in range(config.jobs)]
    asyncio.run(submit_jobs(url, admin, bodies[:5], concurrent=False))  # warm-up
    sequential = asyncio.run(submit_jobs(url, admin, bodies, concurrent=False))
    concurrent = asyncio.run(submit_jobs(url, admin, bodies, concurrent=True))
    return {"sequential": _submissions(sequential), "concurrent": _submissions(concurrent)}


def run_database(label: str, database_url: str | None, bare: ServerProcess, config: Config) -> Any:
    """Seed once, then each measurement on a freshly started API over the same store: a
    scenario that stalls the server (requests still queued inside it when the clients gave
    up) must not slow the next one down."""
    with tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as tmp:
        backend = local_backend(Path(tmp), database_url=database_url, redis_url=config.redis)

        def api(step: str) -> ServerProcess:
            log = Path(tmp) / f"api-{step}.log"
            return ServerProcess(config.api_app, backend.env(), config.options, log_path=log)

        seeder = Seeder(backend.database_url, backend.artifacts_url)
        result: dict[str, Any] = {"database": label, "broker": backend.broker_url.split(":")[0]}
        try:
            with api("seed") as server:
                admin = seeder.admin_token()
                model, baseline = os.urandom(64 * 1024), os.urandom(128 * 1024)
                published = seeder.publish(DEPLOYMENT, model, baseline)
                tokens = asyncio.run(
                    register_devices(server.url, admin, DEPLOYMENT, config.clients)
                )
            print(f"[{label}] seeded v{published.version}; {len(tokens)} devices registered")
            with api("jobs") as server:
                result["jobs"] = _jobs(server.url, admin, seeder, config)
            print(f"[{label}] jobs: {result['jobs']}")
            path = f"/v1/deployments/{DEPLOYMENT}/manifest"
            for kind, etag, bare_etag in (("304", published.etag, BARE_ETAG), ("200", None, None)):
                with api(kind) as server:
                    ours = _scenario(
                        server, PollPlan(path, tokens, etag), config, manifest_check(published)
                    )
                theirs = _scenario(bare, PollPlan(path, ["-"], bare_etag), config, None)
                result[f"manifest_{kind}"] = ours
                result[f"bare_{kind}"] = theirs
                result[f"ratio_{kind}"] = _ratio(ours, theirs)
                print(
                    f"[{label}] {kind}: ours {ours['ok_per_s']}/s p99 {ours['p99_ms']} ms "
                    f"errors {ours['errors']}; bare {theirs['ok_per_s']}/s p99 "
                    f"{theirs['p99_ms']} ms errors {theirs['errors']}"
                )
            return result
        finally:
            seeder.close()


@contextlib.contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A fresh database next to `admin_url`'s, dropped afterwards; yields its URL."""
    import psycopg

    name = f"edgeprune_bench_{uuid.uuid4().hex[:10]}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{plain.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _environment(config: Config) -> dict[str, Any]:
    env = common.environment()
    for package in VERSIONED:
        env[package] = importlib.metadata.version(package)
    env["loadavg_1m_before"] = round(os.getloadavg()[0], 2)
    env["nice"] = os.nice(0)
    return env


def run(config: Config) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "benchmark": "service_throughput",
        "environment": _environment(config),
        "api_app": config.api_app,
        "uvicorn": config.options.as_dict(),
        "load": {
            "clients": config.clients,
            "duration_s": config.duration_s,
            "warmup_s": config.warmup_s,
            "jobs": config.jobs,
            "client": (
                "wrk, one thread, one keep-alive connection per client, closed loop, no think "
                "time; each request carries the next device token (round robin)"
                if config.loadgen == "wrk"
                else "httpx.AsyncClient per simulated device, closed loop, no think time"
            ),
        },
        "runs": {},
    }
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="edgeprune-bare-") as tmp,
        ServerProcess(BARE_APP, {}, config.options, log_path=Path(tmp) / "bare.log") as bare,
    ):
        payload["runs"]["sqlite"] = run_database("sqlite", None, bare, config)
        if config.postgres:
            with postgres_database(config.postgres) as url:
                payload["runs"]["postgresql"] = run_database("postgresql", url, bare, config)
    payload["wall_s"] = round(time.monotonic() - started, 1)
    return payload


def parse_args(argv: list[str] | None = None) -> tuple[Config, str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short scenarios (≤ 3 minutes)")
    parser.add_argument("--postgres", metavar="URL", help="also run on PostgreSQL (admin URL)")
    parser.add_argument("--redis", metavar="URL", help="Redis broker for job submissions")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--duration", type=float, help="seconds per scenario")
    parser.add_argument("--jobs", type=int, help="submissions per mode")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--api-app", default=API_APP, help="app factory to serve (e.g. a what-if variant)"
    )
    parser.add_argument("--out", default="service_throughput", help="results file name")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator for the polls: wrk when installed (auto), or the asyncio one",
    )
    args = parser.parse_args(argv)
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if wrk.available() else "python"
    elif loadgen == "wrk" and not wrk.available():
        parser.error("wrk is not installed (Debian: apt-get install wrk)")
    duration = args.duration or (6.0 if args.quick else 30.0)
    return Config(
        clients=args.clients,
        duration_s=duration,
        warmup_s=2.0 if args.quick else 5.0,
        jobs=args.jobs or (50 if args.quick else 200),
        options=UvicornOptions(workers=args.workers),
        postgres=args.postgres,
        redis=args.redis,
        api_app=args.api_app,
        loadgen=loadgen,
    ), args.out


def main(argv: list[str] | None = None) -> None:
    config, out = parse_args(argv)
    common.save(out, run(config))


if __name__ == "__main__":
    main()
