"""The device's main loop: poll and update, benchmark what is new, report, wait, repeat.

Waiting is always `Event.wait(timeout)` on the stop signal, so SIGINT/SIGTERM end the
loop at once (mid-wait, mid-retry or between download chunks) and nothing ever spins.
After a success the next poll comes one interval later, jittered so a fleet started
together does not poll in lockstep. After a failure the wait grows exponentially (with
jitter, and never shorter than the server's Retry-After) until a cycle succeeds.

Which errors end the loop: AuthError (a revoked or wrong token needs an operator; polling
on would only fill the server's logs) and ConfigError. Everything else (server down, 5xx,
a corrupted download, a model this device refuses, a full disk) is retried with backoff.
A 404 (the deployment has nothing promoted yet) is polled again at the normal interval.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from edgeprune.contracts.edge import Latency, SentDeviceReport

from .api import ApiClient
from .backoff import Backoff, Stopper
from .bench import BenchConfig, BenchResult, LatencyStats, run_benchmark
from .errors import (
    AuthError,
    ConfigError,
    EdgeError,
    IntegrityError,
    Interrupted,
    ModelInvalid,
    NotFound,
    RequestRejected,
)
from .state import DeviceConfig, InstalledModel, StateDir
from .updater import InstallFailure, Updater, UpdateResult

log = logging.getLogger("edge_client.runner")


@dataclass(frozen=True)
class RunConfig:
    interval: float = 300.0
    # The poll interval is drawn uniformly from interval * (1 ± interval_jitter).
    interval_jitter: float = 0.1
    # Half fixed, half random: after a failure the loop never retries almost at once.
    error_backoff: Backoff = field(default_factory=lambda: Backoff(base=5.0, cap=600.0, jitter=0.5))
    bench: BenchConfig = field(default_factory=BenchConfig)


@dataclass(frozen=True)
class CycleResult:
    update: UpdateResult
    report: SentDeviceReport | None  # the report posted in this cycle, if any


def build_report(installed: InstalledModel, result: BenchResult) -> SentDeviceReport:
    """The body of POST /v1/devices/{id}/reports (edgeprune.contracts.edge).

    The service validates the DeviceReport fields and stores the BenchmarkContext ones (how
    it was measured) as sent. `fp32_latency` and
    `speedup_vs_fp32` are null unless the device timed the fp32 pruned model beside an int8
    one (`--also-fp32`): baseline → fp32 → int8 shows what pruning and quantization bought.
    """

    def pct(stats: LatencyStats | None) -> Latency | None:
        if stats is None:
            return None
        return {"p50_ms": stats.p50, "p95_ms": stats.p95, "p99_ms": stats.p99}

    manifest = installed.manifest
    return {
        "version": manifest.version,
        "sha256": manifest.sha256,
        "status": "ok",
        "latency": pct(result.latency_ms),
        "throughput_per_s": result.throughput,
        "peak_rss_mb": result.peak_rss_mb,
        "threads": result.threads,
        "baseline_latency": pct(result.baseline_latency_ms),
        "speedup": result.speedup,
        "variant": manifest.variant,
        "fp32_latency": pct(result.fp32_latency_ms),
        "speedup_vs_fp32": result.speedup_vs_fp32,
        # how it was measured
        "job_id": manifest.job_id,
        "runs": result.runs,
        "warmup": result.warmup,
        "batch": result.batch,
        "onnxruntime_version": result.onnxruntime_version,
        "cpu": result.cpu,
    }


def build_failure_report(failure: InstallFailure) -> SentDeviceReport:
    """The body of POST /v1/devices/{id}/reports for an install that failed its checks: the
    service lists the device under its deployment's failed installs until it runs that
    version (or a newer one)."""
    manifest = failure.manifest
    return {
        "status": "install_failed",
        "version": manifest.version,
        "sha256": manifest.sha256,
        "stage": failure.stage,
        "error": failure.error[:MAX_ERROR_CHARS],
        "variant": manifest.variant,
        "job_id": manifest.job_id,
    }


# The service keeps at most this much of an error message.
MAX_ERROR_CHARS = 2000

Benchmark = Callable[[InstalledModel, BenchConfig, Stopper], BenchResult]


def benchmark_installed(
    installed: InstalledModel, config: BenchConfig, stopper: Stopper
) -> BenchResult:
    # The fp32 file is there only when the device was asked for it (Updater's also_fp32).
    return run_benchmark(
        installed.model_path,
        baseline=installed.baseline_path,
        fp32=installed.fp32_path,
        config=config,
        input_shape=installed.manifest.input_shape,
        check_stop=stopper.check,
    )


class Runner:
    def __init__(
        self,
        api: ApiClient,
        state: StateDir,
        device: DeviceConfig,
        config: RunConfig,
        stopper: Stopper,
        *,
        rng: random.Random | None = None,
        benchmark: Benchmark = benchmark_installed,
        also_fp32: bool = False,
    ) -> None:
        self.api = api
        self.state = state
        self.device = device
        self.config = config
        self.stopper = stopper
        self.rng = rng or random.Random()
        self.updater = Updater(
            api, state, device.deployment, also_fp32=also_fp32, on_failure=self._install_failed
        )
        self._benchmark = benchmark
        self._pending: tuple[str, SentDeviceReport] | None = None  # (sha256, unsent report)
        # A failed install's report not yet posted (the server may be down right then).
        self._failure: SentDeviceReport | None = None

    def _install_failed(self, failure: InstallFailure) -> None:
        self._failure = build_failure_report(failure)

    def _post_failure(self) -> None:
        """Post the pending install-failure report; kept for the next cycle if the server
        cannot take it now. It never hides the cycle's own outcome."""
        if self._failure is None:
            return
        try:
            self.api.post_report(self.device.device_id, self._failure)
        except Interrupted:
            raise
        except RequestRejected as exc:
            log.warning("the server refused the install-failure report: %s", exc)
        except EdgeError as exc:
            log.warning("install-failure report not posted (next cycle retries): %s", exc)
            return
        else:
            log.info(
                "reported the failed install of version %s (%s)",
                self._failure["version"],
                self._failure["stage"],
            )
        self._failure = None

    def cycle(self) -> CycleResult:
        """Poll (and update), then benchmark and report the current model if not yet done.

        Reporting is keyed on the model's sha256 in poll.json, so a report that failed to
        post (server down right after the download) is retried by the next cycle. An install
        that fails its checks is reported as such (status install_failed) before its error
        ends the cycle.
        """
        try:
            update = self.updater.poll()
        except (IntegrityError, ModelInvalid):
            self._post_failure()
            raise
        self._post_failure()  # one a previous cycle could not post
        current = self.state.current()
        poll = self.state.load_poll()
        if current is None or poll.reported_sha256 == current.manifest.sha256:
            # Say so every poll: a silent device looks like a hung one.
            running = (
                f"version {current.manifest.version} ({current.manifest.variant})"
                if current is not None
                else "no model yet"
            )
            log.info("poll: %s; running %s", update.outcome.value.replace("_", " "), running)
            return CycleResult(update, None)
        sha = current.manifest.sha256
        if self._pending is None or self._pending[0] != sha:
            # Keep the measurement until it is posted: a server that is down for a while
            # must not make the device re-run its benchmark on every retry.
            self.stopper.check()
            result = self._benchmark(current, self.config.bench, self.stopper)
            self._pending = (sha, build_report(current, result))
        report = self._pending[1]
        try:
            self.api.post_report(self.device.device_id, report)
        except RequestRejected:
            # The server refuses this report as such (4xx): posting it again cannot
            # succeed, so it is dropped (and the error still surfaces to the caller).
            self._mark_reported(sha)
            raise
        self._mark_reported(sha)
        latency, speedup = report.get("latency"), report.get("speedup")
        log.info(
            "reported version %s: p50 %s, speedup %s",
            current.manifest.version,
            f"{latency['p50_ms']:.3f} ms" if latency else "n/a",
            f"{speedup:.2f}x" if speedup else "n/a",
        )
        return CycleResult(update, report)

    def _mark_reported(self, sha: str) -> None:
        self._pending = None
        poll = self.state.load_poll()  # re-read: a rollback may have run meanwhile
        poll.reported_sha256 = sha
        self.state.save_poll(poll)

    def _interval(self) -> float:
        spread = self.config.interval * self.config.interval_jitter
        return self.rng.uniform(self.config.interval - spread, self.config.interval + spread)

    def run(self) -> None:
        """Loop until the stop signal; returns normally on stop, raises on fatal errors."""
        failures = 0
        while not self.stopper.stopped:
            try:
                self.cycle()
            except Interrupted:
                break
            except (AuthError, ConfigError):
                raise
            except NotFound as exc:
                failures = 0
                log.warning("%s; polling again in %.0fs", exc, self.config.interval)
                delay = self._interval()
            except (EdgeError, OSError) as exc:
                failures += 1
                delay = self.config.error_backoff.delay(
                    failures, self.rng, getattr(exc, "retry_after", None)
                )
                log.warning(
                    "cycle failed (%d in a row): %s; next try in %.1fs", failures, exc, delay
                )
            else:
                failures = 0
                delay = self._interval()
            if self.stopper.event.wait(delay):
                break
        log.info("stopped")
