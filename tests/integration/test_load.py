"""Load on the real API (issue 6, "Load"): bounded in time and count, loopback only.

The API runs under uvicorn in a child process, started as it is deployed
(`uvicorn service.api.main:create_app --factory`, configured by EDGEPRUNE_* variables), so
the load generator in this process does not share its GIL. State is seeded through the
store (`bench/seed.py`); everything the simulated clients do goes over HTTP.

Throughput and latency are printed and attached with `record_property` (see them with
`-rP`), never asserted: the machine is shared. `bench/service_throughput.py` records the
same numbers, against a bare ASGI endpoint, in `bench/results/`.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import select

from bench.live_service import API_APP, Backend, ServerProcess, local_backend
from bench.loadgen import PollPlan, Submission, job_body, poll_load, register_devices, submit_jobs
from bench.seed import Published, Seeder
from infra.queue import entity_id_from_message
from infra.store.models import Job, JobEvent

# The app factory under test (EDGEPRUNE_LOAD_TEST_APP=module:factory tries another one).
APP = os.environ.get("EDGEPRUNE_LOAD_TEST_APP", API_APP)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEVICES = 500
POLL_SECONDS = 10.0
SUBMISSIONS = 100


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[Callable[[Backend], tuple[ServerProcess, Seeder]]]:
    """Starts the API on a backend and opens a seeder on the same store (both closed after)."""
    opened: list[tuple[ServerProcess, Seeder]] = []

    def start(backend: Backend) -> tuple[ServerProcess, Seeder]:
        server = ServerProcess(APP, backend.env(), log_path=tmp_path / "api.log")
        server.start()
        opened.append((server, Seeder(backend.database_url, backend.artifacts_url)))
        return opened[-1]

    yield start
    for server, seeder in opened:
        seeder.close()
        server.stop()


def _manifest_check(published: Published) -> Callable[[httpx.Response], str | None]:
    def check(response: httpx.Response) -> str | None:
        if response.headers.get("etag") != published.etag:
            return f"ETag {response.headers.get('etag')!r}, expected {published.etag!r}"
        if response.status_code == 304 and response.content:
            return f"304 with a {len(response.content)}-byte body"
        if response.status_code == 200:
            body = response.json()
            if (body["sha256"], body["size"]) != (published.model_sha256, published.model_size):
                return f"200 announcing {body['sha256']} ({body['size']} bytes)"
        return None

    return check


def test_500_devices_polling_the_manifest_see_no_error(
    tmp_path: Path,
    seeded: Callable[[Backend], tuple[ServerProcess, Seeder]],
    record_property: Callable[[str, object], None],
) -> None:
    server, seeder = seeded(local_backend(tmp_path / "data"))
    admin = seeder.admin_token()
    published = seeder.publish("fleet", b"\x01" * 50_000, b"\x02" * 80_000)
    # Every simulated device is registered (POST /v1/devices) and polls with its own token.
    tokens = asyncio.run(register_devices(server.url, admin, "fleet", DEVICES))
    assert len(set(tokens)) == DEVICES

    # Mostly 304: a device's first poll (it has no model yet) and every 20th (a device that
    # lost its state) go without If-None-Match and must get the full manifest.
    plan = PollPlan("/v1/deployments/fleet/manifest", tokens, published.etag, 20, True)
    stats = asyncio.run(
        poll_load(
            server.url,
            plan,
            clients=DEVICES,
            duration_s=POLL_SECONDS,
            max_requests=1_000_000,
            check=_manifest_check(published),
            # A device gives up on a poll after this long; a stuck server must not stall the test.
            timeout_s=10.0,
        )
    )

    summary = stats.summary()
    print("manifest load:", json.dumps(summary))
    record_property("manifest_load", summary)
    assert stats.errors == 0, stats.error_samples
    assert set(stats.statuses) == {200, 304}
    assert stats.statuses[304] > stats.statuses[200] > 0


def _delivery_order(client: redis.Redis, queue: str) -> list[str]:
    """Job ids in the order a worker will receive them: kombu LPUSHes, workers (B)RPOP."""
    raw = client.lrange(queue, 0, -1)
    ids = [entity_id_from_message(json.loads(message)) for message in reversed(raw)]
    assert None not in ids
    return [i for i in ids if i is not None]


def _drop_queues(client: redis.Redis, backend: Backend) -> None:
    for queue in (backend.queue_name, backend.inspect_queue_name):
        keys = [*client.scan_iter(match=f"{queue}*"), f"_kombu.binding.{queue}"]
        client.delete(*keys)


def test_100_concurrent_submissions_are_recorded_and_queued_in_arrival_order(
    tmp_path: Path,
    seeded: Callable[[Backend], tuple[ServerProcess, Seeder]],
    redis_url: str,
    record_property: Callable[[str, object], None],
) -> None:
    """What "order of arrival" means with concurrent requests.

    Requests that overlap in time have no order a client can observe; the server gives them
    one when it records them: the jobs' `created_at` order. Requests that do not overlap keep
    their client order: a job submitted before the burst and one after it bracket the 100.
    Concurrent submissions commit and send their broker messages independently, so the
    broker (a FIFO Redis list, read here directly on a queue name no one else uses) holds one
    message per job in no guaranteed order: a message is a wake-up, and each one runs the
    first-arrived queued job (worker.run_job.run_next_job; its order is tested in
    tests/worker/test_run_job.py::test_a_message_runs_the_first_arrived_queued_job).
    """
    backend = local_backend(tmp_path / "data", redis_url=redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        server, seeder = seeded(backend)
        admin = seeder.admin_token()
        inputs = seeder.job_inputs()
        bodies = [job_body(inputs.model_id, inputs.dataset_id, seed) for seed in range(102)]

        def submit(batch: list[dict[str, object]], concurrent: bool) -> list[Submission]:
            # 20 s: far above a healthy submission, and a stuck server must not stall the suite.
            return asyncio.run(
                submit_jobs(server.url, admin, batch, concurrent=concurrent, timeout_s=20.0)
            )

        (first,) = submit(bodies[:1], False)
        burst = submit(bodies[1:101], True)
        (last,) = submit(bodies[101:], False)

        latencies = sorted(s.latency_ms for s in burst)
        record_property("burst_latency_ms", {"p50": latencies[49], "max": latencies[-1]})
        print(f"100 concurrent submissions: p50 {latencies[49]:.1f} ms, max {latencies[-1]:.1f} ms")
        assert [s.status for s in (first, *burst, last)] == [202] * 102
        burst_ids = {s.job_id for s in burst}
        assert len(burst_ids) == SUBMISSIONS

        with seeder.sessions() as session:
            jobs = session.scalars(
                select(Job).where(Job.model_id == inputs.model_id).order_by(Job.created_at, Job.id)
            ).all()
            events = session.scalars(
                select(JobEvent).where(JobEvent.job_id.in_([j.id for j in jobs]))
            ).all()
        created = [j.id for j in jobs]
        assert len(created) == 102
        assert (created[0], set(created[1:-1]), created[-1]) == (
            first.job_id,
            burst_ids,
            last.job_id,
        )
        assert all(j.state == "queued" and j.enqueued_at is not None for j in jobs)
        assert sorted((e.job_id, e.seq, e.kind, e.data["state"]) for e in events) == sorted(
            (job_id, 1, "state", "queued") for job_id in created
        )

        delivery = _delivery_order(client, backend.queue_name)
        # Non-overlapping submissions keep their order on the broker too.
        assert (delivery[0], set(delivery), delivery[-1]) == (
            first.job_id,
            set(created),
            last.job_id,
        )
        assert len(delivery) == 102
    finally:
        _drop_queues(client, backend)
        client.close()
