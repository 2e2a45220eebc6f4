"""The SSE parsing behind `edgeprune jobs watch`."""

from __future__ import annotations

from service.cli.watch import parse_sse


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
