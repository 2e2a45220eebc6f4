"""`edgeprune serve` runs many small jobs one after another without a stall.

The embedded worker once hung in a freshly started pool process (worker/pool.py says why);
this runs JOBS sequential jobs through the HTTP API and fails as soon as one of them does not
finish within STALL_AFTER_S, printing the state of every job and serve's output. The start
deadline (worker/start_deadline.py) is pushed out of reach so that it cannot hide a stall:
each job must run on its first attempt.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_serve import Serve, _children_of, upload_tiny_inputs
from tests.support.net import free_port

# About 7 minutes on 2 cores: a soak test, run with `pytest -m soak`.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.soak]

JOBS = 100
# A tiny job takes seconds; one that has not finished after this long is stuck. This is a
# watchdog for a hang, not a performance limit.
STALL_AFTER_S = 300.0


def _stalled(client: httpx.Client, serve: Serve, job_id: str, done: int) -> AssertionError:
    listing = client.get("/v1/jobs", params={"limit": 10}).json()["data"]
    states = {j["id"]: (j["state"], j.get("phase")) for j in listing}
    while not serve.lines.empty():
        serve.output.append(serve.lines.get())
    tail = "\n".join(serve.output[-60:])
    return AssertionError(
        f"job {job_id} (number {done + 1}) did not finish within {STALL_AFTER_S} s; "
        f"jobs: {states}; serve output:\n{tail}"
    )


@pytest.mark.timeout(JOBS * STALL_AFTER_S + 600)
def test_a_hundred_sequential_jobs_on_the_embedded_service_never_stall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEPRUNE_START_TIMEOUT_S", "86400")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = Serve(tmp_path / "data", port)
    try:
        serve.wait_line("EdgePrune is running at", 180)
        serve.wait_line("Admin token", 5)
        token = serve.wait_line("ep_", 5)
        serve.children = _children_of(serve.process.pid)
        client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=90
        )
        model_id, dataset_id = upload_tiny_inputs(client, tmp_path / "inputs")
        request: dict[str, Any] = {
            "model_id": model_id, "dataset_id": dataset_id,
            "target": {"metric": "flops", "reduction": 0.5}, "structure_epochs": 1,
            "finetune_epochs": 1, "batch_size": 64,
        }  # fmt: skip
        for done in range(JOBS):
            job = client.post("/v1/jobs", json={**request, "seed": done})
            assert job.status_code == 202, job.text
            job_id = job.json()["id"]
            watchdog = time.monotonic() + STALL_AFTER_S
            while (body := client.get(f"/v1/jobs/{job_id}").json())["state"] not in (
                "succeeded", "failed", "canceled",
            ):  # fmt: skip
                if time.monotonic() > watchdog:
                    raise _stalled(client, serve, job_id, done)
                time.sleep(0.2)
            assert (body["state"], body["attempts"]) == ("succeeded", 1), body
    finally:
        serve.kill()
