"""Options shared by the commands (typer and stdlib only: imported at CLI start)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from edgeprune.contracts import exit_codes
from edgeprune.json_output import json_option

Server = Annotated[
    str,
    typer.Option(
        "--server", envvar="EDGEPRUNE_SERVER", metavar="URL", help="Base URL of the EdgePrune API."
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="EDGEPRUNE_TOKEN",
        metavar="TOKEN",
        help="Bearer token (default: DATA_DIR/admin-token, written by `edgeprune serve`).",
        show_default=False,
    ),
]
JsonOutput = Annotated[bool, json_option("Print the server's answer as JSON instead of lines.")]
# The levels every command that logs takes with --log-level (Python's names, any case).
LogLevelName = Literal["debug", "info", "warning", "error", "critical"]


def log_level_option(what: str) -> typer.models.OptionInfo:
    return typer.Option("--log-level", case_sensitive=False, help=f"Least severe {what} shown.")


DEFAULT_SERVER = "http://127.0.0.1:8000"
# Shown under every HTTP command group's --help: the numbers both command lines share.
EXIT_CODES = exit_codes.epilog(exit_codes.HTTP_COMMANDS)
