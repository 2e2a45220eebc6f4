"""Markdown pieces shared by the sections of bench/RESULTS.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured markdown table, one line per row."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def measured_date(payload: dict[str, Any]) -> str:
    """The day a results file was measured (its environment's date), or "?"."""
    return str(payload.get("environment", {}).get("date", "?"))[:10]
