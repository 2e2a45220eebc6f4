"""Prometheus metrics of the API process.

Each app gets its own registry (several apps in one test process must not collide in the
global one). Requests are labelled by route *template* (`/v1/jobs/{job_id}`), never by the
raw path, so the series count stays bounded. Job counts by state are read from the database
at scrape time: the database is the source of truth, any API replica reports the same.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgeprune.contracts.jobs import JobState


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "edgeprune_http_requests",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "edgeprune_http_request_duration_seconds",
            "Time to the end of the response by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.jobs = Gauge(
            "edgeprune_jobs", "Jobs in the database by state.", ["state"], registry=self.registry
        )
        self.manifest = Counter(
            "edgeprune_manifest_responses",
            "Manifest responses by outcome: 200 (sent) or 304 (device already up to date).",
            ["status"],
            registry=self.registry,
        )
        self.manifest_304_ratio = Gauge(
            "edgeprune_manifest_not_modified_ratio",
            "Share of manifest polls answered 304 since the process started.",
            registry=self.registry,
        )
        self._manifest_counts = {200: 0, 304: 0}

    def record_manifest(self, status: int) -> None:
        self.manifest.labels(status=str(status)).inc()
        self.count_manifest(status)

    def count_manifest(self, status: int) -> None:
        """The 304 ratio's tally only (the poll fast path increments pre-bound counters)."""
        self._manifest_counts[status] = self._manifest_counts.get(status, 0) + 1

    def refresh(self, job_counts: dict[str, int]) -> None:
        """Update the values computed at scrape time."""
        for state in JobState:
            self.jobs.labels(state=state.value).set(job_counts.get(state.value, 0))
        not_modified = self._manifest_counts[304]
        total = self._manifest_counts[200] + not_modified
        self.manifest_304_ratio.set(not_modified / total if total else 0.0)


class MetricsMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer SSE streams)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self.metrics
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            metrics.requests.labels(method=method, route=template, status=str(status)).inc()
            metrics.latency.labels(method=method, route=template).observe(
                time.perf_counter() - start
            )
