"""Options shared by the HTTP commands (typer and stdlib only: imported at CLI start)."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeprune.contracts import exit_codes

Server = Annotated[
    str,
    typer.Option("--server", envvar="EDGEPRUNE_SERVER", help="Base URL of the EdgePrune API."),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="EDGEPRUNE_TOKEN",
        help="Bearer token (default: <data dir>/admin-token written by `edgeprune serve`).",
        show_default=False,
    ),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the raw JSON response.")]
DEFAULT_SERVER = "http://127.0.0.1:8000"
# Shown under every HTTP command group's --help: the numbers both command lines share.
EXIT_CODES = exit_codes.epilog(exit_codes.HTTP_COMMANDS)
