"""The exit codes of both command lines, `edgeprune` and `edge-client`.

One table, so a script that calls either can read the same number the same way: 3 is
always "the server could not be reached", never "not registered".
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    AUTH = 4
    NOT_FOUND = 5
    REFUSED = 6
    SERVER_ERROR = 7
    NOT_SET_UP = 8
    INTEGRITY = 9
    MODEL_INVALID = 10
    NOTHING_TO_ROLL_BACK = 11
    DATA_MISMATCH = 12
    STALLED = 13
    INTERRUPTED = 130


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.FAILED: "an error not listed here; `jobs watch`: the job failed or was canceled",
    ExitCode.USAGE: "bad command line, or local input that cannot be used (a file, an "
    "option's value, an extra this install lacks)",
    ExitCode.UNREACHABLE: "the server could not be reached or timed out",
    ExitCode.AUTH: "no token, or the server refused it (401, 403)",
    ExitCode.NOT_FOUND: "not found (404)",
    ExitCode.REFUSED: "the server refused the request (409, 413, 415, 422, other 4xx)",
    ExitCode.SERVER_ERROR: "the server failed (5xx), asked to retry later (408, 429) or "
    "answered outside the protocol",
    ExitCode.NOT_SET_UP: "edge-client: the device is not registered or has no model yet",
    ExitCode.INTEGRITY: "edge-client: a download failed its size or sha256 check",
    ExitCode.MODEL_INVALID: "edge-client: onnxruntime refused the model",
    ExitCode.NOTHING_TO_ROLL_BACK: "edge-client: no previous model to roll back to",
    ExitCode.DATA_MISMATCH: "edge-client: the labelled data does not fit the model",
    ExitCode.STALLED: "compress/pretrain: training stopped making progress",
    ExitCode.INTERRUPTED: "stopped by SIGINT or SIGTERM",
}


# What the operator's HTTP commands (`edgeprune models|jobs|deployments|devices ...`) can end with.
HTTP_COMMANDS = (
    ExitCode.OK,
    ExitCode.FAILED,
    ExitCode.USAGE,
    ExitCode.UNREACHABLE,
    ExitCode.AUTH,
    ExitCode.NOT_FOUND,
    ExitCode.REFUSED,
    ExitCode.SERVER_ERROR,
)


def epilog(codes: Iterable[ExitCode] = ExitCode) -> str:
    """Those codes as one paragraph, for the end of a command group's --help."""
    return "Exit codes: " + "; ".join(f"{int(c)} {MEANING[c]}" for c in codes) + "."
