"""The README's first command: `edgeprune demo` runs end to end (with fewer epochs)."""

from __future__ import annotations

import json
import os
import re
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
    # The job asked for INT8: the device installs it when it kept the accuracy (and was not
    # slower on the worker), fp32 otherwise; either way the watch's summary said which.
    installed = re.search(r"installed: current version 1 \((fp32|int8)\); reported", out)
    assert installed, out[-4000:]
    assert re.search(r"accuracy [0-9.]+% → [0-9.]+%  INT8 ", done.stderr)  # watch's summary
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


@pytest.mark.integration
@pytest.mark.slow
def test_demo_json_prints_one_object_made_of_each_steps_json(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo"
    done = subprocess.run(
        [
            sys.executable, "-m", "edgeprune", "demo", "--data-dir", str(data_dir),
            "--pretrain-epochs", "1", "--structure-epochs", "1", "--finetune-epochs", "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    result = json.loads(done.stdout)  # stdout is the one object and nothing else
    assert "== 5/5" in done.stderr  # the narration went to stderr
    assert result["admin_token"] == (data_dir / "admin-token").read_text().strip()
    assert result["dashboard"] == result["server"] + "/"
    job = result["job"]
    assert job["state"] == "succeeded" and job["model_id"] == result["model"]["id"]
    assert abs(job["summary"]["achieved"]["flops"] - 0.5) <= 0.01
    int8 = job["summary"]["int8"]  # quantized: published, or refused with the reason
    assert int8 is not None and (int8["published"] or int8["reason"])
    variants = {v["name"] for v in result["deployment"]["manifest"].get("variants") or []}
    assert ("int8" in variants) == bool(int8["published"])
    assert result["deployment"]["manifest"]["job_id"] == job["id"]
    device = result["device"]
    assert device["registration"]["deployment"] == "demo"
    assert device["install"]["version"] == result["deployment"]["manifest"]["version"]
    assert device["benchmark"]["latency_ms"]["p50"] > 0 and device["benchmark"]["speedup"] > 0
