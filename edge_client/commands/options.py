"""What the edge-client commands share: the consoles, the state folder option, logging, and
typed errors turned into one line on stderr and their exit code (see errors.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import EdgeError
from ..state import StateDir

out = Console()
err = Console(stderr=True)


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge-client"


StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="EDGE_CLIENT_STATE_DIR",
        metavar="DIR",
        help="Local state folder (default: $XDG_STATE_HOME/edge-client).",
    ),
]


def state_folder(path: Path | None) -> StateDir:
    return StateDir(path or default_state_dir())


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """Typed errors become one line on stderr and their exit code; bugs keep a traceback."""
    try:
        yield
    except EdgeError as exc:
        # Escaped: a message naming an extra ('edgeprune[edge-images]') is not markup; soft
        # wrap keeps it one line for scripts that read stderr.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


# The names `edgeprune serve|api|worker --log-level` take too.
LogLevelName = Literal["debug", "info", "warning", "error", "critical"]
LogLevelOpt = Annotated[
    LogLevelName,
    typer.Option("--log-level", case_sensitive=False, help="Least severe log lines shown."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")]


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
