"""The real EdgePrune API (or any ASGI app) under uvicorn in a child process, on loopback.

Used by `bench.service_throughput` and by the load tests: the server runs in its own process
so the load generator never shares a GIL (or an event loop) with it, and it is started the
way `edgeprune api` is deployed: `uvicorn service.api.main:create_app --factory`, configured
only by EDGEPRUNE_* variables.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

API_APP = "service.api.main:create_app"
BARE_APP = "bench.bare_app:create_bare_app"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Backend:
    """Where a service keeps its state: database, broker, artifacts and queue names."""

    data_dir: Path
    database_url: str
    broker_url: str
    artifacts_url: str
    queue_name: str = "gpu"
    inspect_queue_name: str = "inspect"

    def env(self) -> dict[str, str]:
        return {
            "EDGEPRUNE_DATA_DIR": str(self.data_dir),
            "EDGEPRUNE_DATABASE_URL": self.database_url,
            "EDGEPRUNE_BROKER_URL": self.broker_url,
            "EDGEPRUNE_ARTIFACTS_URL": self.artifacts_url,
            "EDGEPRUNE_QUEUE_NAME": self.queue_name,
            "EDGEPRUNE_INSPECT_QUEUE_NAME": self.inspect_queue_name,
            # No worker runs here: keep the reconciler from re-sending queued jobs mid-run.
            "EDGEPRUNE_RECONCILE_INTERVAL_S": "3600",
            "EDGEPRUNE_ENQUEUE_GRACE_S": "3600",
        }


def local_backend(
    root: Path, *, database_url: str | None = None, redis_url: str | None = None
) -> Backend:
    """SQLite (unless `database_url`), the SQLite broker (unless `redis_url`) and a local
    artifact folder under `root`; Redis queues get names no one else uses."""
    suffix = uuid.uuid4().hex[:10]
    return Backend(
        data_dir=root,
        database_url=database_url or f"sqlite:///{root / 'api.db'}",
        broker_url=redis_url or f"sqla+sqlite:///{root / 'broker.db'}",
        artifacts_url=str(root / "artifacts"),
        queue_name=f"gpu-{suffix}" if redis_url else "gpu",
        inspect_queue_name=f"inspect-{suffix}" if redis_url else "inspect",
    )


@dataclass(frozen=True)
class UvicornOptions:
    """The uvicorn settings of a run (recorded next to the numbers)."""

    workers: int = 1
    loop: str = "uvloop"
    http: str = "httptools"
    backlog: int = 2048
    timeout_keep_alive_s: int = 5
    # A server stopped with requests stuck inside it gives up on them after this long.
    timeout_graceful_shutdown_s: int = 5
    access_log: bool = False

    def argv(self, app: str, port: int) -> list[str]:
        args = [sys.executable, "-m", "uvicorn", app, "--factory"]
        args += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers)]
        args += ["--loop", self.loop, "--http", self.http, "--backlog", str(self.backlog)]
        args += ["--timeout-keep-alive", str(self.timeout_keep_alive_s), "--log-level", "warning"]
        args += ["--timeout-graceful-shutdown", str(self.timeout_graceful_shutdown_s)]
        if not self.access_log:
            args.append("--no-access-log")
        return args

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """`with ServerProcess(app, env) as server:` a uvicorn child answering on `server.url`."""

    app: str
    env: dict[str, str] = field(default_factory=dict)
    options: UvicornOptions = field(default_factory=UvicornOptions)
    ready_path: str = "/healthz"
    startup_timeout_s: float = 60.0
    log_path: Path | None = None
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        env = {**os.environ, **self.env, "PYTHONPATH": str(REPO)}
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.options.argv(self.app, self.port),
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.app} exited with {self.process.returncode} at startup")
            try:
                if httpx.get(self.url + self.ready_path, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.app} did not answer in {self.startup_timeout_s} s")
            time.sleep(0.1)

    def stop(self, timeout_s: float = 15.0) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only its children
            process.wait(timeout=timeout_s)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and its worker processes so far."""
        if self.process is None:
            return 0.0
        return sum(_cpu_seconds(pid) for pid in _process_tree(self.process.pid))

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += children
        frontier = children
    return tree


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # Fields 14 and 15 of proc(5) (utime, stime), counted after the ")" of the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
