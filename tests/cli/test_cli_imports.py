"""The CLI starts fast: importing it loads typer and the standard library only."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("httpx", "rich.progress", "sqlalchemy", "fastapi", "celery", "torch", "service.api")


def test_importing_the_cli_loads_no_heavy_module() -> None:
    code = (
        "import sys, service.cli\n"
        f"loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
