"""Starting the service: `run_api` (the API alone) and `serve` (the embedded default).

`serve` is a small supervisor. It applies the migrations, makes the admin token on first
start, then runs three children, each in its own session (process group):

    api              uvicorn service.api.main:create_app (the reconciler runs inside it)
    gpu worker       python -m edgeprune worker --queues gpu --concurrency 1
    inspect worker   python -m edgeprune worker --queues inspect --concurrency 1

The inspect worker is separate so that an upload is checked while a long job holds the gpu
worker. Everything lives under one data dir: SQLite database, `sqla+sqlite` broker, artifacts.

Ctrl-C / SIGTERM: the supervisor sends SIGTERM to the API's process group and SIGQUIT to each
worker's main process (Celery's cold shutdown: it ends a running task and stops its own pool;
signalling the pool processes too made the worker log an ERROR for each of them and start
replacements while shutting down), waits `STOP_GRACE_S`, then SIGKILLs every group, so no
process outlives it. A job cut short this way stays `running` in the database and its message
goes back to the queue; on the next start the job resumes from its last epoch checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from edgeprune.contracts.data_dir import ADMIN_TOKEN_FILE
from infra.settings import Settings, get_settings
from infra.supervisor_watch import SUPERVISOR_ENV

API_APP = "service.api.main:create_app"
STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 120.0
# A worker that dies is restarted, but not in a tight loop.
RESTART_BACKOFF_S = 5.0


def run_api(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    settings: Settings | None = None,
    log_level: str = "info",
    proxy_headers: bool = True,
) -> None:
    """Run the API in this process until SIGINT/SIGTERM (what `edgeprune api` does).

    Configured by EDGEPRUNE_* environment variables (or `settings`). Migrations are applied
    by the app's lifespan before it serves.
    """
    import uvicorn

    from service.api.main import create_app

    app = create_app(settings or get_settings())
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=proxy_headers)


@dataclass
class Child:
    name: str
    argv: list[str]
    restart: bool
    # How the child is asked to stop: a Celery worker takes SIGQUIT in its main process alone
    # and stops its pool itself; the API takes SIGTERM in its whole group.
    stop_signal: signal.Signals = signal.SIGTERM
    stop_whole_group: bool = True
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: list[float] = field(default_factory=list)

    def start(self, env: dict[str, str]) -> None:
        # Own session: a terminal's Ctrl-C reaches only the supervisor, which stops the
        # children in order; and killpg reaches a worker's pool processes too.
        self.process = subprocess.Popen(self.argv, env=env, start_new_session=True)
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, sig: signal.Signals) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def ask_to_stop(self) -> None:
        if self.process is None:
            return
        if self.stop_whole_group:
            self.signal_group(self.stop_signal)
        elif self.process.poll() is None:
            self.process.send_signal(self.stop_signal)


def embedded_settings(data_dir: Path) -> Settings:
    """The settings of `serve`: EDGEPRUNE_* variables still apply; the data dir is ours."""
    return Settings(data_dir=data_dir.resolve())


def ensure_admin_token(settings: Settings) -> str | None:
    """Create the first admin token; returns its secret, or None when one exists already.

    The secret is also written to `<data dir>/admin-token` (mode 0600) so the local CLI and
    the demo can pick it up; the database keeps only its hash.
    """
    from infra.store.db import make_engine, make_session_factory
    from infra.store.tokens import create_token, has_admin_token

    engine = make_engine(settings.resolved_database_url())
    try:
        with make_session_factory(engine).begin() as session:
            if has_admin_token(session):
                return None
            _, secret = create_token(session, "admin (created by edgeprune serve)", kind="admin")
    finally:
        engine.dispose()
    path = settings.data_dir / ADMIN_TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def _children(host: str, port: int, log_level: str) -> list[Child]:
    python = sys.executable
    worker = [python, "-m", "edgeprune", "worker", "--concurrency", "1", "--log-level", log_level]
    return [
        Child(
            "api",
            [
                python, "-m", "uvicorn", "--factory", API_APP,
                "--host", host, "--port", str(port), "--log-level", log_level,
            ],
            restart=False,
        ),
        Child(
            "gpu worker",
            [*worker, "--queues", "gpu", "--name", "gpu@embedded"],
            restart=True, stop_signal=signal.SIGQUIT, stop_whole_group=False,
        ),
        Child(
            "inspect worker",
            [*worker, "--queues", "inspect", "--name", "inspect@embedded"],
            restart=True, stop_signal=signal.SIGQUIT, stop_whole_group=False,
        ),
    ]  # fmt: skip


def wait_ready(url: str, api: Child, timeout: float, stop: threading.Event) -> bool:
    """Poll /healthz until it answers 200; False if the API died, stop was set, or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if not api.alive():
            return False
        try:
            if httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stop.wait(0.3)
    return False


def stop_children(children: list[Child], grace: float = STOP_GRACE_S) -> None:
    for child in children:
        child.ask_to_stop()
    deadline = time.monotonic() + grace
    for child in children:
        if child.process is None:
            continue
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
    # SIGKILL every group, also those whose leader exited: pool processes may linger.
    for child in children:
        child.signal_group(signal.SIGKILL)
        if child.process is not None and child.process.poll() is None:
            child.process.wait()


def serve(
    data_dir: Path = Path("edgeprune-data"),
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    log_level: str = "info",
    ready_timeout: float = READY_TIMEOUT_S,
    echo: Callable[[str], None] = print,
) -> int:
    """Run the embedded service until Ctrl-C/SIGTERM; returns the process exit code.

    Prints the URL once the API answers, and the admin token on the first start.
    """
    from infra.queue import prepare_broker
    from infra.store.migrate import upgrade_database

    settings = embedded_settings(data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_database(settings.resolved_database_url())
    prepare_broker(settings)  # before the children: they would race to create its queues
    secret = ensure_admin_token(settings)

    # SUPERVISOR_ENV: the children end themselves if serve is killed (supervisor_watch).
    env = {
        **os.environ,
        "EDGEPRUNE_DATA_DIR": str(settings.data_dir),
        SUPERVISOR_ENV: str(os.getpid()),
    }
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children = _children(host, port, log_level)
    url = f"http://{host}:{port}"
    try:
        for child in children:
            child.start(env)
        api = children[0]
        if not wait_ready(url, api, ready_timeout, stop):
            if stop.is_set():
                return 0
            echo(f"error: the API did not come up at {url}")
            return 1
        echo(f"EdgePrune is running at {url}  (data: {settings.data_dir})")
        if secret is not None:
            echo(f"Admin token (shown once; also in {settings.data_dir / ADMIN_TOKEN_FILE}):")
            echo(f"  {secret}")
        return _supervise(children, env, stop, echo)
    finally:
        stop_children(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _supervise(
    children: list[Child], env: dict[str, str], stop: threading.Event, echo: Callable[[str], None]
) -> int:
    while not stop.wait(0.5):
        for child in children:
            if child.alive():
                continue
            code = child.process.returncode if child.process is not None else None
            if not child.restart:
                echo(f"error: the {child.name} exited (code {code}); stopping")
                return 1
            now = time.monotonic()
            if now - child.started_at < RESTART_BACKOFF_S:
                continue
            child.signal_group(signal.SIGKILL)  # leftovers of the dead worker's pool
            echo(f"the {child.name} exited (code {code}); restarting it")
            child.start(env)
            child.restarts.append(now)
    return 0
