"""`edgeprune jobs watch`: the SSE parsing behind it, and its --json lines against the real
API on loopback."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from typer.testing import CliRunner

from edgeprune.cli import app
from infra.store import jobs as job_store
from service.cli.watch import parse_sse, summary_line
from tests.api.api_helpers import finish_job, seed_dataset, seed_model
from tests.support.live_server import LiveServer

runner = CliRunner()


def test_parse_sse_events_comments_and_multiline_data() -> None:
    lines = [
        ": ping - 2026-01-01",
        "",
        "id: 1",
        "event: state",
        'data: {"state": "queued"}',
        "",
        "id: 2",
        "event: log",
        'data: {"message":',
        'data: "two lines"}',
        "",
        "data: 3",
    ]
    events = list(parse_sse(iter(lines)))
    assert [(e.id, e.event) for e in events] == [("1", "state"), ("2", "log"), (None, "message")]
    assert events[0].json() == {"state": "queued"}
    assert events[1].json() == {"message": "two lines"}
    assert events[2].json() == 3


def _submit(server: LiveServer) -> str:
    result = runner.invoke(
        app,
        ["jobs", "submit", "--model", seed_model(server), "--dataset", seed_dataset(server),
         "--target", "flops=0.5", "--server", server.url, "--token", server.admin_token],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    job_id: str = result.stdout.strip()
    return job_id


def _watch_json(server: LiveServer, job_id: str) -> tuple[int, list[dict[str, Any]]]:
    result = runner.invoke(
        app,
        ["jobs", "watch", job_id, "--json", "--server", server.url, "--token", server.admin_token],
    )
    # Every line of stdout is one JSON object; nothing else is printed there.
    return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()]


def test_watch_json_prints_every_event_then_the_finished_job(live_server: LiveServer) -> None:
    job_id = _submit(live_server)
    summary = {"achieved": {"flops": 0.5, "params": 0.52}, "accuracy_after": 0.92}
    worker = threading.Thread(
        target=lambda: (time.sleep(0.5), finish_job(live_server, job_id, summary=summary))
    )
    worker.start()
    try:
        code, lines = _watch_json(live_server, job_id)
    finally:
        worker.join()
    assert code == 0
    *events, last = lines
    assert last["event"] == "job" and last["id"] is None
    assert last["data"]["id"] == job_id and last["data"]["state"] == "succeeded"
    assert last["data"]["summary"]["achieved"] == {"flops": 0.5, "params": 0.52}
    assert all(set(e) == {"id", "event", "data"} and e["id"] for e in events)
    kinds = [e["event"] for e in events]
    assert "progress" in kinds and kinds[-1] == "state"
    assert events[-1]["data"]["state"] == "succeeded"
    # Replayed from the job's first event, in order.
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_watch_json_of_a_failed_job_ends_with_it_and_exits_1(live_server: LiveServer) -> None:
    job_id = _submit(live_server)
    with live_server.sessions() as session:
        claim = job_store.mark_running(session, job_id, "w")
        job_store.mark_failed(session, job_id, claim.lease, "CheckpointError", "bad weights")
        session.commit()
    code, lines = _watch_json(live_server, job_id)
    assert code == 1
    assert lines[-1]["event"] == "job" and lines[-1]["data"]["state"] == "failed"
    assert lines[-1]["data"]["error_message"] == "bad weights"


def test_the_summary_line_gives_reductions_accuracy_and_what_int8_bought() -> None:
    summary: dict[str, Any] = {
        "achieved": {"flops": 0.7, "params": 0.61},
        "accuracy_before": 0.9,
        "accuracy_after": 0.885,
        "int8": {"published": True, "accuracy": 0.88, "speed_over_fp32": 1.84},
    }
    line = summary_line({"summary": summary})
    assert line == (
        "FLOPs (MACs) −70.0%  params −61.0%  accuracy 90.0% → 88.5%  INT8 88.0%, 1.84x fp32's speed"
    )
    # Rows written before the speed was measured, and an int8 model that was refused.
    summary["int8"] = {"published": True, "accuracy": 0.88}
    assert summary_line({"summary": summary}).endswith("INT8 88.0%")
    summary["int8"] = {"published": False, "accuracy": 0.5, "speed_over_fp32": 2.0}
    assert summary_line({"summary": summary}).endswith("INT8 not published (see report.json)")
