"""The run loop: reports after updates, backoff without busy loops, prompt stop, signals."""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_client.api import ApiClient
from edge_client.backoff import Backoff, Stopper
from edge_client.bench import BenchConfig, BenchResult
from edge_client.errors import IntegrityError, ModelInvalid, RequestRejected, ServerError
from edge_client.runner import Benchmark, RunConfig, Runner, benchmark_installed
from edge_client.state import DeviceConfig, InstalledModel, StateDir
from tests.edge_client.edge_test_server import EdgeTestServer, TinyModels

REPO = Path(__file__).resolve().parents[2]
BACKOFF = Backoff(base=0.1, cap=5.0, jitter=0.5)


def _runner(
    server_url: str,
    token: str,
    state: StateDir,
    stopper: Stopper,
    interval: float = 60.0,
    benchmark: Benchmark = benchmark_installed,
) -> Runner:
    device = DeviceConfig(server_url, "cams", "dev_0001", "cam-17", token)
    # retries=0: each cycle is one request, so the loop's own backoff is what is measured.
    api = ApiClient(server_url, token, retries=0, stopper=stopper, rng=random.Random(0))
    config = RunConfig(
        interval=interval, error_backoff=BACKOFF, bench=BenchConfig(runs=10, warmup=1)
    )
    return Runner(api, state, device, config, stopper, rng=random.Random(0), benchmark=benchmark)


def _start(runner: Runner) -> threading.Thread:
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    return thread


def _stop(runner: Runner, thread: threading.Thread) -> float:
    """Signal stop; return how long the loop took to end."""
    start = time.monotonic()
    runner.stopper.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    runner.api.close()
    return time.monotonic() - start


def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def _assert_growing(times: list[float]) -> None:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # Half-jittered doubling: the gap two steps later is always at least 2x the ceiling
    # of this one's floor, so it is strictly longer whatever the jitter drew.
    for earlier, later in zip(gaps, gaps[2:], strict=False):
        assert later > earlier, gaps
    assert gaps[-1] > 3 * gaps[0], gaps
    assert min(gaps) >= BACKOFF.base / 2 * 0.9, gaps  # never a busy loop


@pytest.fixture
def hangup_server() -> Iterator[tuple[str, list[float]]]:
    """A TCP server that accepts and at once closes every connection: a broken server."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.05)
    accepted: list[float] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
                continue
            accepted.append(time.monotonic())
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", accepted
    done.set()
    thread.join(timeout=5)
    sock.close()


def test_server_down_backs_off_and_stops_promptly(
    hangup_server: tuple[str, list[float]], tmp_path: Path
) -> None:
    url, accepted = hangup_server
    runner = _runner(url, "t", StateDir(tmp_path), Stopper())
    thread = _start(runner)
    time.sleep(2.5)
    stopped_in = _stop(runner, thread)
    # Gaps of 0.05-0.1, 0.1-0.2, 0.2-0.4, 0.4-0.8, 0.8-1.6 s: 5 or 6 tries in 2.5 s.
    assert 4 <= len(accepted) <= 7, accepted
    _assert_growing(accepted)
    assert stopped_in < 0.5


def test_connection_refused_backs_off(
    free_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge_client.runner")
    runner = _runner(f"http://127.0.0.1:{free_port}", "t", StateDir(tmp_path), Stopper())
    thread = _start(runner)
    time.sleep(2.5)
    assert _stop(runner, thread) < 0.5
    failures = [r for r in caplog.records if "cycle failed" in r.getMessage()]
    assert 4 <= len(failures) <= 7
    assert all("cannot reach" in r.getMessage() for r in failures)
    _assert_growing([r.created for r in failures])


def test_retry_after_is_a_floor_for_the_loop(edge_server: EdgeTestServer, tmp_path: Path) -> None:
    edge_server.queued_failures.extend([(503, {"Retry-After": "1"})] * 2)
    runner = _runner(
        edge_server.url, edge_server.device_token("cams"), StateDir(tmp_path), Stopper()
    )
    thread = _start(runner)
    _wait_for(lambda: len(edge_server.requests) >= 3, timeout=10)
    # The third answer is a 404 (nothing promoted): the loop now waits its 60 s interval.
    assert _stop(runner, thread) < 0.5
    times = [r.at for r in edge_server.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 1.0 and times[2] - times[1] >= 1.0


class CountingBenchmark:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(
        self, installed: InstalledModel, config: BenchConfig, stopper: Stopper
    ) -> BenchResult:
        self.calls += 1
        return benchmark_installed(installed, config, stopper)


def test_cycle_reports_after_an_update_and_retries_a_failed_report(
    edge_server: EdgeTestServer,
    tiny_models: TinyModels,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    edge_server.promote("cams", tiny_models.bytes("pruned"), baseline=tiny_models.bytes("baseline"))
    state = StateDir(tmp_path)
    bench = CountingBenchmark()
    token = edge_server.device_token("cams")
    runner = _runner(edge_server.url, token, state, Stopper(), benchmark=bench)
    edge_server.fail_posts = 2
    for _ in range(2):
        with pytest.raises(ServerError):
            runner.cycle()  # installed, benchmarked, but the report did not get through
    assert state.current() is not None and not edge_server.reports

    result = runner.cycle()  # 304, and the pending report is sent
    assert result.update.outcome.value == "not_modified"
    assert bench.calls == 1  # measured once, not again for every retry of the post
    ((device_id, report),) = edge_server.reports
    assert device_id == "dev_0001" and result.report == report
    assert report["version"] == 1 and report["runs"] == 10 and report["threads"] == 1
    lat = report["latency"]
    assert 0 < lat["p50_ms"] <= lat["p95_ms"] <= lat["p99_ms"]
    speedup = report["baseline_latency"]["p50_ms"] / lat["p50_ms"]
    assert report["speedup"] == pytest.approx(speedup)
    assert report["throughput_per_s"] > 0 and report["peak_rss_mb"] > 0
    assert report["onnxruntime_version"] and report["cpu"]["logical_cores"] >= 1

    with caplog.at_level(logging.INFO, logger="edge_client.runner"):
        assert runner.cycle().report is None  # nothing new: no second report
    # ...and it says so: a silent device looks like a hung one.
    assert "poll: not modified; running version 1 (fp32)" in caplog.text
    assert len(edge_server.reports) == 1 and bench.calls == 1
    runner.api.close()


def test_a_failed_install_is_reported_and_retried_until_posted(
    edge_server: EdgeTestServer, tiny_models: TinyModels, tmp_path: Path
) -> None:
    edge_server.promote("cams", tiny_models.bytes("pruned"))
    bench = CountingBenchmark()
    token = edge_server.device_token("cams")
    state = StateDir(tmp_path)
    runner = _runner(edge_server.url, token, state, Stopper(), benchmark=bench)
    runner.cycle()
    edge_server.reports.clear()

    v2 = edge_server.promote("cams", b"\x08\x07this is not an onnx protobuf" * 50)
    edge_server.fail_posts = 1  # the failure report does not get through at first
    with pytest.raises(ModelInvalid):
        runner.cycle()
    assert not edge_server.reports
    runner.cycle()  # the refused model is not fetched again; the report is posted now
    ((device_id, report),) = edge_server.reports
    assert device_id == "dev_0001"
    assert report == {
        "status": "install_failed",
        "version": 2,
        "sha256": v2["sha256"],
        "stage": "load",
        "error": report["error"],
        "variant": "fp32",
        "job_id": v2["job_id"],
    }
    assert "onnxruntime cannot open" in report["error"]
    assert state.current() is not None and state.current().manifest.version == 1

    v3 = edge_server.promote("cams", tiny_models.bytes("pruned_v2"))
    edge_server.corrupt.add(v3["sha256"])
    with pytest.raises(IntegrityError):
        runner.cycle()
    assert edge_server.reports[-1][1]["stage"] == "checksum"
    assert edge_server.reports[-1][1]["version"] == 3
    edge_server.corrupt.clear()
    assert runner.cycle().report is not None  # installed and benchmarked after all
    assert edge_server.reports[-1][1]["status"] == "ok" and len(edge_server.reports) == 3
    runner.api.close()


def test_a_report_the_server_refuses_is_not_retried(
    edge_server: EdgeTestServer, tiny_models: TinyModels, tmp_path: Path
) -> None:
    edge_server.promote("cams", tiny_models.bytes("pruned"))
    bench = CountingBenchmark()
    token = edge_server.device_token("cams")
    runner = _runner(edge_server.url, token, StateDir(tmp_path), Stopper(), benchmark=bench)
    edge_server.fail_posts, edge_server.fail_posts_status = 1, 422
    with pytest.raises(RequestRejected):
        runner.cycle()
    assert runner.cycle().report is None
    assert bench.calls == 1 and not edge_server.reports
    runner.api.close()


def test_sigterm_stops_a_real_run_process(edge_server: EdgeTestServer, tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    token = edge_server.device_token("cams")
    state.save_config(DeviceConfig(edge_server.url, "cams", "dev_0001", "cam-17", token))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "edge_client", "run", "--interval", "60"]
    args += ["--state-dir", str(state.root)]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(lambda: len(edge_server.requests) >= 1, timeout=30)
        time.sleep(0.3)  # now inside the interval wait
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - start < 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert len(edge_server.requests) == 1  # one poll (a 404), then waiting, not spinning
    assert "stopped" in (proc.stderr.read() if proc.stderr else "")
