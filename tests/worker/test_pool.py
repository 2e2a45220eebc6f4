"""Pool processes never start from a fork of a process whose other threads use SQLite.

The control test shows the hazard this guards against: a child forked while another thread
of its parent is inside SQLite can find one of SQLite's process-wide mutexes locked forever.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
from pathlib import Path

import pytest

from worker.main import worker_argv
from worker.pool import pool_start_method

# A forked child that has not opened SQLite after this long is stuck (it takes milliseconds).
CHILD_ALARM_S = 2
MAX_FORKS = 500


def _forked_children_hang_on_sqlite(db: Path) -> int:
    """Fork (from this thread) while another thread queries SQLite, as billiard's Supervisor
    thread forks while the worker's main thread polls the sqla broker; returns after the
    first child that cannot open SQLite, or MAX_FORKS. Returns the forks made."""
    with sqlite3.connect(db) as conn:
        conn.execute("create table m(id integer primary key, payload text)")
        conn.executemany("insert into m(payload) values (?)", [("x" * 200,)] * 200)
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            conn = sqlite3.connect(db)
            conn.execute("select * from m limit 50").fetchall()
            conn.close()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        for forks in range(1, MAX_FORKS + 1):
            pid = os.fork()
            if pid == 0:  # the child: SIGALRM's default action ends it if it hangs
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                signal.alarm(CHILD_ALARM_S)
                sqlite3.connect(db).execute("select count(*) from m").fetchall()
                os._exit(0)
            _, status = os.waitpid(pid, 0)
            if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM:
                return forks
        return 0
    finally:
        stop.set()
        poller.join()


def test_control_a_child_forked_while_another_thread_uses_sqlite_can_hang(
    tmp_path: Path,
) -> None:
    forks = _forked_children_hang_on_sqlite(tmp_path / "broker.sqlite")
    assert forks, f"no child of {MAX_FORKS} forks hung: the hazard did not show"


@pytest.mark.parametrize(
    ("broker_url", "method"),
    [
        # kombu's SQLite transport has no event loop: billiard's threaded pool would fork.
        ("sqla+sqlite:////tmp/edgeprune-broker.db", "spawn"),
        ("memory://", "spawn"),
        # Redis drives the pool from the main thread's event loop: forking is safe there.
        ("redis://127.0.0.1:6379/0", "fork"),
    ],
)
def test_pool_processes_are_spawned_unless_the_main_thread_forks(
    broker_url: str, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert pool_start_method(broker_url) == method
    monkeypatch.setenv("EDGEPRUNE_BROKER_URL", broker_url)
    from infra.settings import get_settings

    get_settings.cache_clear()
    try:
        argv = worker_argv(["gpu"], 1, "gpu@test", "INFO")
    finally:
        get_settings.cache_clear()
    assert f"--pool-start-method={method}" in argv and "--pool=prefork" in argv
