"""bench/gpu_check.py: without CUDA it says so and exits 0; on the CPU it runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", *args],
        cwd=REPO, capture_output=True, text=True, timeout=280,
    )  # fmt: skip


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA machine runs the real check")
def test_without_cuda_it_says_so_and_exits_0() -> None:
    done = _run()
    assert done.returncode == 0, done.stderr
    assert "no CUDA device here" in done.stdout


def test_a_cpu_smoke_run_measures_both_parts(tmp_path: Path) -> None:
    done = _run("--device", "cpu", "--smoke", "--name", str(tmp_path / "check"))
    assert done.returncode == 0, done.stderr
    result = json.loads((tmp_path / "check.json").read_text())
    speed = result["throughput"]
    assert speed["plain_amp_step_ms"] > 0 and speed["structure_learning_vs_plain"] > 0
    assert [r["precision"] for r in result["precision"]] == ["fp32", "auto"]
    assert result["both_reach_target"] is True
