"""An install without an extra says which one to install, not a ModuleNotFoundError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _without(module: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m edgeprune ARGS` where importing `module` fails as if not installed."""
    blocker = tmp_path / "blocked"
    blocker.mkdir(exist_ok=True)
    (blocker / f"{module}.py").write_text(
        f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.getcwd()])}
    return subprocess.run(
        [sys.executable, "-m", "edgeprune", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip


def test_a_missing_extra_is_named(tmp_path: Path) -> None:
    done = _without("torch", tmp_path, "compress", "--arch", "vgg11", "--structure-epochs", "0")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: this command needs torch, which this install lacks: pip install 'edgeprune[worker]'"
    )
    assert "Traceback" not in done.stderr
    served = _without("fastapi", tmp_path, "api", "--help")
    assert served.returncode == 0  # help needs nothing beyond typer


def test_help_needs_no_extra(tmp_path: Path) -> None:
    done = _without("torch", tmp_path, "--help")
    assert done.returncode == 0 and "compress" in done.stdout
