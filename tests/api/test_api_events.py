"""GET /v1/jobs/{id}/events: Server-Sent Events from the job_events table."""

from __future__ import annotations

import threading
import time

import pytest

from tests.api.api_helpers import Api, finish_job, read_sse, submit_job


def test_finished_job_replays_every_event_and_ends(api: Api) -> None:
    job = submit_job(api)
    finish_job(api, job["id"])
    events = read_sse(api, f"/v1/jobs/{job['id']}/events")
    assert [e["id"] for e in events] == ["1", "2", "3", "4"]
    assert [e["event"] for e in events] == ["state", "state", "progress", "state"]
    assert events[0]["data"] == {"state": "queued"}
    assert events[2]["data"] == {"phase": "calibrating"}
    assert events[-1]["data"]["state"] == "succeeded"


def test_replay_from_last_event_id(api: Api) -> None:
    job = submit_job(api)
    finish_job(api, job["id"])
    events = read_sse(api, f"/v1/jobs/{job['id']}/events", {"Last-Event-ID": "2"})
    assert [e["id"] for e in events] == ["3", "4"]
    # The query parameter does the same for clients that cannot set headers.
    events = read_sse(api, f"/v1/jobs/{job['id']}/events?after=3")
    assert [e["id"] for e in events] == ["4"]


def test_reconnect_after_the_end_gets_nothing_and_ends(api: Api) -> None:
    job = submit_job(api)
    finish_job(api, job["id"])
    assert read_sse(api, f"/v1/jobs/{job['id']}/events", {"Last-Event-ID": "4"}) == []


def test_bad_last_event_id_is_422(api: Api) -> None:
    job = submit_job(api)
    response = api.client.get(
        f"/v1/jobs/{job['id']}/events", headers={**api.admin, "Last-Event-ID": "abc"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["header", "Last-Event-ID"]


def test_stream_follows_live_events_until_the_job_ends(api: Api) -> None:
    job = submit_job(api)

    def worker() -> None:
        # What a worker does from another process: commit rows; the stream polls them.
        time.sleep(0.8)
        finish_job(api, job["id"])

    thread = threading.Thread(target=worker)
    started = time.monotonic()
    thread.start()
    try:
        events = read_sse(api, f"/v1/jobs/{job['id']}/events")
    finally:
        thread.join()
    assert time.monotonic() - started >= 0.8  # it waited for the live events
    assert [e["id"] for e in events] == ["1", "2", "3", "4"]
    assert events[-1]["data"]["state"] == "succeeded"


def test_events_need_a_token(api: Api) -> None:
    job = submit_job(api)
    assert api.client.get(f"/v1/jobs/{job['id']}/events").status_code == 401


@pytest.mark.timeout(30)
def test_idle_stream_sends_keepalive_comments(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.api.routes import jobs as jobs_routes

    monkeypatch.setattr(jobs_routes, "KEEPALIVE_S", 0.2)
    job = submit_job(api)
    lines: list[str] = []
    with api.client.stream("GET", f"/v1/jobs/{job['id']}/events", headers=api.admin) as response:
        for line in response.iter_lines():
            lines.append(line)
            if line.startswith(":"):
                break
    # The queued event first, then a comment line while nothing happens.
    assert lines[0] == "id: 1"
    assert lines[-1].startswith(": ping")
