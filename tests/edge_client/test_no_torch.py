"""The device side must import without torch, the service or pydantic installed (the edge
extra does not bring them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_client_imports_without_torch_or_service() -> None:
    # A None entry in sys.modules makes `import torch` raise ImportError, as if absent.
    blocked = [
        "torch", "service", "worker", "pruning", "fastapi", "sqlalchemy", "celery", "pydantic",
        "pydantic_settings", "dotenv",
    ]  # fmt: skip
    code = (
        "import sys\n"
        f"for name in {blocked!r}: sys.modules[name] = None\n"
        "import edge_client.cli, edge_client.updater, edge_client.bench, edge_client.runner\n"
        "assert not any(m.split('.')[0] in "
        f"{set(blocked)!r} for m in sys.modules if sys.modules[m] is not None)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
