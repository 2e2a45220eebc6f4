"""Options shared by the HTTP commands (typer and stdlib only: imported at CLI start)."""

from __future__ import annotations

from typing import Annotated

import typer

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
# Shown under every HTTP command group's --help (the codes are set in service/cli/client.py).
EXIT_CODES = (
    "Exit codes: 0 ok, 1 watched job failed or canceled, 2 usage error, 3 server unreachable, "
    "4 not authenticated/allowed, 5 not found, 6 request refused (409/413/415/422), "
    "7 server error."
)
