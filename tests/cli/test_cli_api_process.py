"""`edgeprune api` as a real process, configured by EDGEPRUNE_* variables."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port

pytestmark = pytest.mark.slow


def test_api_command_serves_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "EDGEPRUNE_DATA_DIR": str(tmp_path),
        "EDGEPRUNE_BROKER_URL": f"sqla+sqlite:///{tmp_path / 'broker.db'}",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("EDGEPRUNE_DATABASE_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "edgeprune", "api", "--port", str(port), "--log-level", "warning"],
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "edgeprune api exited"
            assert time.monotonic() < deadline, "edgeprune api did not answer"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        # The lifespan migrated the database in the data dir.
        assert (tmp_path / "edgeprune.db").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/v1/jobs").status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
