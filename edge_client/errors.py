"""The edge client's exception tree, and the exit code each one maps to on the command line.

Errors from the server arrive as RFC 9457 problem+json and are parsed by `from_response`
into one of these; local failures (a corrupted download, a model onnxruntime refuses, a
missing state folder) raise them directly. The CLI prints `str(error)` as one line on
stderr and exits with the class's `exit_code`, a number of the table both command lines
share (edgeprune.contracts.exit_codes):

====  ==================  ============================================================
code  exception           meaning
====  ==================  ============================================================
0     (none)              success
1     EdgeError           an error not covered below
2     ConfigError         bad command line or local input (typer's usage errors too):
                          an option's value, a file, an unreadable state folder
3     Unreachable         the server could not be reached, or the connection failed
4     AuthError           401/403: token missing, revoked, or not allowed for this
5     NotFound            404: unknown deployment, artifact or device (or nothing
                          promoted yet)
6     RequestRejected     any other 4xx (409 not ready, 422 invalid, ...)
7     ServerError         5xx, or an answer outside the protocol
8     NotSetUp            not registered, or no model installed yet
9     IntegrityError      a download's size or sha256 does not match the manifest
10    ModelInvalid        onnxruntime refused the model, or it failed a test inference
11    NothingToRollBack   `rollback` with no previous/ model
12    DataError           the labelled .npz for accuracy does not fit the model
130   Interrupted         stopped by SIGINT/SIGTERM before finishing
====  ==================  ============================================================
"""

from __future__ import annotations

from typing import Any

import httpx

from edgeprune.contracts.edge import InstallStage
from edgeprune.contracts.exit_codes import ExitCode

PROBLEM_TYPE_PREFIX = "urn:edgeprune:problem:"


class EdgeError(Exception):
    """Base of every error the edge client raises on purpose."""

    exit_code: int = ExitCode.FAILED


class ConfigError(EdgeError):
    exit_code = ExitCode.USAGE


class NotSetUp(ConfigError):
    """The device has not been registered, or has no model installed yet."""

    exit_code = ExitCode.NOT_SET_UP


class ServerError(EdgeError):
    """The server could not be reached or answered with 5xx / something unparseable.

    `retry_after` (seconds) is set when the server said how long to wait.
    """

    exit_code = ExitCode.SERVER_ERROR

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Unreachable(ServerError):
    """Nothing usable came back: the connection could not be made, timed out or broke."""

    exit_code = ExitCode.UNREACHABLE


class HTTPProblem(EdgeError):
    """A 4xx answer: the request itself was refused. Carries the parsed problem fields."""

    exit_code = ExitCode.REFUSED

    def __init__(
        self,
        message: str,
        *,
        status: int,
        problem_type: str = "about:blank",
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.problem_type = problem_type
        self.retry_after = retry_after

    @property
    def slug(self) -> str:
        """The problem type without the `urn:edgeprune:problem:` prefix."""
        return self.problem_type.removeprefix(PROBLEM_TYPE_PREFIX)


class AuthError(HTTPProblem):
    exit_code = ExitCode.AUTH


class NotFound(HTTPProblem):
    exit_code = ExitCode.NOT_FOUND


class RequestRejected(HTTPProblem):
    exit_code = ExitCode.REFUSED


class IntegrityError(EdgeError):
    exit_code = ExitCode.INTEGRITY


class ModelInvalid(EdgeError):
    """onnxruntime refused the model. `stage` says where: "load" (it could not be opened)
    or "inference" (it opened, but its test inference failed or does not fit the manifest);
    the service's install-failure report carries it."""

    exit_code = ExitCode.MODEL_INVALID

    def __init__(self, message: str, *, stage: InstallStage = "load") -> None:
        super().__init__(message)
        self.stage = stage


class NothingToRollBack(EdgeError):
    exit_code = ExitCode.NOTHING_TO_ROLL_BACK


class DataError(EdgeError):
    exit_code = ExitCode.DATA_MISMATCH


class Interrupted(EdgeError):
    """Raised inside waits and downloads once the stop signal is set."""

    exit_code = ExitCode.INTERRUPTED


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _problem_fields(response: httpx.Response) -> dict[str, Any]:
    # Not every error comes from our app (a proxy's 502 page, an empty 503): fall back to
    # the status line rather than failing to parse the error itself.
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def from_response(response: httpx.Response) -> EdgeError:
    """Turn an error response (status >= 400) into the matching typed exception."""
    status = response.status_code
    fields = _problem_fields(response)
    title = str(fields.get("title") or response.reason_phrase or "HTTP error")
    detail = fields.get("detail")
    message = f"{status} {title}" + (f": {detail}" if detail and detail != title else "")
    message += f" ({response.request.method} {response.request.url.path})"
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status >= 500 or status in (408, 429):
        # 408/429 are the client's "fault" by number but mean "try again later".
        return ServerError(message, status=status, retry_after=retry_after)
    problem_type = str(fields.get("type") or "about:blank")
    cls: type[HTTPProblem]
    if status in (401, 403):
        cls = AuthError
    elif status == 404:
        cls = NotFound
    else:
        cls = RequestRejected
    return cls(message, status=status, problem_type=problem_type, retry_after=retry_after)
