"""`edgeprune jobs watch`: a rich progress bar driven by the job's SSE stream, or with
--json the stream itself as JSON lines (`watch_job`'s docstring gives their shape).

Reconnects with `Last-Event-ID` when the connection drops (an API restart, a proxy timeout),
so no event is missed or shown twice; gives up after a few failed attempts in a row.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from edgeprune.contracts.artifacts import REPORT_JSON
from edgeprune.contracts.exit_codes import ExitCode
from edgeprune.contracts.jobs import TERMINAL_STATES, JobState
from edgeprune.contracts.report import JobSummary
from edgeprune.json_output import echo_json_line
from service.cli.client import CliError, api_client, check

MAX_RECONNECTS = 5


@dataclass
class SseEvent:
    id: str | None = None
    event: str = "message"
    data: list[str] = field(default_factory=list)

    def json(self) -> Any:
        return json.loads("\n".join(self.data)) if self.data else {}


def parse_sse(lines: Iterator[str]) -> Iterator[SseEvent]:
    """Events of a text/event-stream (comments, i.e. keepalive pings, are skipped)."""
    current = SseEvent()
    for line in lines:
        if not line:
            if current.data or current.id is not None:
                yield current
            current = SseEvent()
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            current.id = value
        elif name == "event":
            current.event = value
        elif name == "data":
            current.data.append(value)
    if current.data:
        yield current


def _describe(event: SseEvent, data: dict[str, Any]) -> str | None:
    """The short note after the bar: the phase has its own column, so not repeated here."""
    if event.event == "state":
        return f"state: {data.get('state')}"
    if event.event in ("progress", "epoch"):
        epoch, epochs = data.get("epoch"), data.get("epochs")
        parts = [f"epoch {epoch}/{epochs}"] if epoch is not None and epochs else []
        metrics = data.get("metrics") or {}
        if isinstance(metrics.get("loss"), int | float):
            parts.append(f"loss {metrics['loss']:.3f}")
        if isinstance(metrics.get("accuracy"), int | float):
            parts.append(f"acc {100 * metrics['accuracy']:.1f}%")
        if isinstance(metrics.get("flops"), int | float):
            parts.append(f"FLOPs (MACs) {_count(metrics['flops'])}")
        return "  ".join(parts)
    return None


def _count(value: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.2f}{suffix}"
    return f"{value:.0f}"


def summary_line(job: dict[str, Any]) -> str:
    """The finished job's headline: reductions in percent, accuracy before → after."""
    summary = cast(JobSummary, job.get("summary") or {})
    achieved: Mapping[str, object] = summary.get("achieved") or {}
    reduced = {"FLOPs (MACs)": achieved.get("flops"), "params": achieved.get("params")}
    parts = [
        f"{label} −{100 * value:.1f}%"
        for label, value in reduced.items()
        if isinstance(value, int | float)
    ]
    before, after = summary.get("accuracy_before"), summary.get("accuracy_after")
    if isinstance(before, int | float) and isinstance(after, int | float):
        parts.append(f"accuracy {100 * before:.1f}% → {100 * after:.1f}%")
    int8 = summary.get("int8")
    accuracy = int8.get("accuracy") if int8 else None
    if int8 and int8.get("published") and isinstance(accuracy, int | float):
        speed = int8.get("speed_over_fp32")
        on_worker = f", {speed:.2f}x fp32's speed" if isinstance(speed, int | float) else ""
        parts.append(f"INT8 {100 * accuracy:.1f}%{on_worker}")
    elif int8:
        parts.append(f"INT8 not published (see {REPORT_JSON})")
    return "  ".join(parts)


class _Display(Protocol):
    def show(self, event: SseEvent, data: dict[str, Any]) -> None: ...

    def done(self) -> None: ...


class _JsonLines:
    """--json: every event as one line on stdout, in the stream's own words."""

    def show(self, event: SseEvent, data: dict[str, Any]) -> None:
        echo_json_line({"id": event.id, "event": event.event, "data": data})

    def done(self) -> None:
        pass


class _Bar:
    """The rich progress bar of one job, updated from its events."""

    def __init__(self, progress: Progress, job: dict[str, Any]) -> None:
        self.progress = progress
        self.task = progress.add_task(
            job["id"],
            total=1.0,
            completed=job["progress"],
            phase=job["phase"] or job["state"],
            note="",
        )

    def show(self, event: SseEvent, data: dict[str, Any]) -> None:
        if isinstance(data.get("progress"), int | float):
            self.progress.update(self.task, completed=float(data["progress"]))
        if data.get("phase"):
            self.progress.update(self.task, phase=str(data["phase"]).replace("_", " "))
        note = _describe(event, data)
        if note:
            self.progress.update(self.task, note=note)

    def done(self) -> None:
        self.progress.update(self.task, completed=1.0)


def _follow(
    client: httpx.Client, job_id: str, last_id: str | None, display: _Display
) -> tuple[str | None, int]:
    """Read the stream until the server ends it; returns the last event id and the count."""
    headers = {"Last-Event-ID": last_id} if last_id else {}
    seen = 0
    with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers) as response:
        if response.status_code >= 400:
            response.read()
            check(response)
        for event in parse_sse(response.iter_lines()):
            last_id = event.id or last_id
            seen += 1
            data = event.json()
            if isinstance(data, dict):
                display.show(event, data)
    return last_id, seen


def watch_job(
    server: str, token: str | None, job_id: str, *, as_json: bool = False
) -> dict[str, Any]:
    """Show the job's progress until its terminal state; returns the final job.

    With `as_json`, stdout gets one JSON object per line instead of the bar: every event
    of the job from its start, as {"id", "event", "data"} (event: state, progress, epoch,
    log; data: as GET /v1/jobs/{id}/events sends it), then the finished job as
    {"id": null, "event": "job", "data": <GET /v1/jobs/{id}>}.
    """
    # Streams are long-lived; the read timeout only has to outlast the server's keepalive.
    with api_client(server, token, timeout=60.0) as client:
        job = check(client.get(f"/v1/jobs/{job_id}"))
        if as_json:
            job = _until_done(client, job_id, _JsonLines())
            echo_json_line({"id": None, "event": "job", "data": job})
            return job
        console = Console(stderr=True)
        # A fixed bar: the note takes what is left of the line (and is cut, not the bar).
        columns = (
            TextColumn("[bold]{task.fields[phase]:<18}"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn(
                "{task.fields[note]}", table_column=Column(no_wrap=True, overflow="ellipsis")
            ),
        )
        with Progress(*columns, console=console) as progress:
            job = _until_done(client, job_id, _Bar(progress, job))
    _summary(console, job)
    return job


def _until_done(client: httpx.Client, job_id: str, display: _Display) -> dict[str, Any]:
    """Follow the job's events, reconnecting with Last-Event-ID, until a terminal state."""
    last_id: str | None = None
    failures = 0
    while True:
        try:
            last_id, seen = _follow(client, job_id, last_id, display)
            problem: Exception | None = None
        except (httpx.TransportError, httpx.StreamError) as exc:
            seen, problem = 0, exc
        if problem is None:
            # The server ends the stream after the terminal state event.
            job = check(client.get(f"/v1/jobs/{job_id}"))
            if job["state"] in TERMINAL_STATES:
                if job["state"] == JobState.SUCCEEDED:
                    display.done()
                break
        # Dropped or ended early: resume from Last-Event-ID, backing off while
        # reconnects bring nothing new.
        failures = 0 if seen else failures + 1
        if failures > MAX_RECONNECTS:
            raise CliError(f"lost the event stream: {problem}", ExitCode.UNREACHABLE)
        time.sleep(min(2.0**failures, 15.0) if failures else 0.5)
    return job


def _summary(console: Console, job: dict[str, Any]) -> None:
    state = job["state"]
    if state == JobState.SUCCEEDED:
        console.print(f"[green]succeeded[/green] {job['id']}  {summary_line(job)}", soft_wrap=True)
    elif state == JobState.FAILED:
        console.print(
            f"[red]failed[/red] {job['id']}: {job.get('error_type')}: {job.get('error_message')}"
        )
    else:
        console.print(f"[yellow]{state}[/yellow] {job['id']}")
