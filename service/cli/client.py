"""The operator CLI's HTTP side: one configured httpx client and problem+json → exit codes.

Imported only inside commands (it pulls in httpx), so `edgeprune --help` stays fast.
Exit codes are the table both command lines share (edgeprune.contracts.exit_codes): 3 the
server could not be reached, 4 not authenticated or allowed (401, 403), 5 not found (404),
6 refused (other 4xx), 7 server error (5xx); `jobs watch` exits 1 for a job that failed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer

from edgeprune.contracts.data_dir import ADMIN_TOKEN_FILE
from edgeprune.contracts.exit_codes import ExitCode


class CliError(Exception):
    """An error to print as one line and exit with `code`."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Problem:
    status: int
    title: str
    detail: str

    @property
    def exit_code(self) -> int:
        if self.status in (401, 403):
            return ExitCode.AUTH
        if self.status == 404:
            return ExitCode.NOT_FOUND
        # 408/429 mean "try again later", as the edge client reads them too.
        if self.status >= 500 or self.status in (408, 429):
            return ExitCode.SERVER_ERROR
        return ExitCode.REFUSED

    def message(self) -> str:
        return (
            f"{self.status} {self.title}: {self.detail}"
            if self.detail
            else f"{self.status} {self.title}"
        )


def parse_problem(response: httpx.Response) -> Problem:
    """The problem+json body of an error response (or a best effort for anything else)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        title = str(body.get("title") or response.reason_phrase)
        detail = " ".join(str(body.get("detail") or "").split())
        return Problem(response.status_code, title, detail)
    text = " ".join(response.text.split())[:200]
    return Problem(response.status_code, response.reason_phrase, text)


def resolve_token(token: str | None) -> str:
    """--token / EDGEPRUNE_TOKEN, else the admin token `edgeprune serve` left in its data dir."""
    if token:
        return token
    data_dir = Path(os.environ.get("EDGEPRUNE_DATA_DIR", "edgeprune-data"))
    path = data_dir / ADMIN_TOKEN_FILE
    try:
        secret = path.read_text().strip()
    except OSError:
        secret = ""
    if not secret:
        raise CliError(
            f"no token: pass --token, set EDGEPRUNE_TOKEN, or run where {path} exists",
            ExitCode.AUTH,
        )
    return secret


@contextmanager
def api_client(server: str, token: str | None, *, timeout: float = 30.0) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {resolve_token(token)}"}
    # Explicit timeouts: connecting fails fast; reads allow for a slow upload inspection.
    limits = httpx.Timeout(timeout, connect=5.0)
    with httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=limits) as client:
        try:
            yield client
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {server}: {exc}", ExitCode.UNREACHABLE) from None


def check(response: httpx.Response) -> Any:
    """The JSON body of a successful response; CliError with the problem otherwise."""
    if response.status_code >= 400:
        problem = parse_problem(response)
        raise CliError(problem.message(), problem.exit_code)
    if response.status_code == 204 or not response.content:
        return None
    return response.json()


def run(fn: Any) -> Any:
    """Run a command body, turning CliError into a one-line message and an exit code."""
    try:
        return fn()
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.code) from None


def request_json(server: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    """One API call as a command body: the JSON answer, or a one-line error and its exit code."""

    def call() -> Any:
        with api_client(server, token) as client:
            return check(client.request(method, path, **kwargs))

    return run(call)
