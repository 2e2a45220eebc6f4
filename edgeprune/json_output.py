"""`--json` as every EdgePrune command line has it: one option, one way to print.

With --json a command prints JSON on stdout and nothing else there: messages, progress bars
and logs go to stderr, so `edgeprune ... --json | jq` always reads valid JSON. A command
that ends with a result prints one document (indented); a command that follows a stream
(`edgeprune jobs watch --json`) prints one compact document per line. NaN and infinities,
which JSON lacks, are printed as null.

typer and the standard library only: every command line, the edge client's included,
imports it at start.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from edgeprune.contracts.json_values import json_safe

JSON_HELP = "Print JSON instead of lines."


def json_option(help: str = JSON_HELP) -> Any:
    """The `--json` flag, with the command's own description of what it prints."""
    return typer.Option("--json", help=help)


JsonOutput = Annotated[bool, json_option()]


def dumps(document: Any) -> str:
    """A result document as the command lines print it: indented, strict JSON."""
    return json.dumps(json_safe(document), indent=2, allow_nan=False)


def echo_json(document: Any) -> None:
    """Print a command's result document on stdout."""
    typer.echo(dumps(document))


def echo_json_line(document: Any) -> None:
    """Print one document of a stream on stdout: one line, flushed at once for a pipe."""
    typer.echo(json.dumps(json_safe(document), separators=(",", ":"), allow_nan=False))
