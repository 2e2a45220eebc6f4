"""The README's first command: `edgeprune demo` runs end to end (with fewer epochs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.integration
@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, "-m", "edgeprune", "demo", "--data-dir", str(tmp_path / "demo"),
            "--pretrain-epochs", "1", "--structure-epochs", "1", "--finetune-epochs", "1",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    for step in ["1/5", "2/5", "3/5", "4/5", "5/5"]:
        assert f"== {step}" in out
    assert "succeeded job_" in out
    assert "demo  version 1" in out  # the manifest of the deployment
    assert "installed: current version 1 (fp32); reported" in out
    assert "speedup vs baseline" in out
    # The token to log in with is in the closing lines, not only between start-up logs.
    token = (tmp_path / "demo" / "admin-token").read_text().strip()
    assert f"Admin token: {token}" in done.stdout.splitlines()[-1]
    # The demo stops the service it started: no process of it is left.
    data_dir = str(tmp_path / "demo")
    leftovers = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if data_dir in cmdline:
            leftovers.append(cmdline)
    assert leftovers == []
