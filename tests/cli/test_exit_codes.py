"""Both command lines read a status the same way: one table of exit codes
(edgeprune.contracts.exit_codes), used by the operator CLI and by the edge client."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import httpx
import pytest

from edge_client import errors as edge_errors
from edgeprune.contracts.exit_codes import MEANING, ExitCode
from service.cli.client import CliError, Problem, api_client


def _edge_error_classes() -> list[type[edge_errors.EdgeError]]:
    found = [edge_errors.EdgeError]
    for cls in found:
        found.extend(cls.__subclasses__())
    return found


def test_every_code_has_one_meaning() -> None:
    assert set(MEANING) == set(ExitCode)
    assert len({int(c) for c in ExitCode}) == len(ExitCode)


def test_every_edge_error_exits_with_a_shared_code() -> None:
    for cls in _edge_error_classes():
        assert cls.exit_code in set(ExitCode), cls.__name__


@pytest.mark.parametrize("status", [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503])
def test_an_http_status_gives_the_same_code_in_both_clis(status: int) -> None:
    response = httpx.Response(
        status,
        json={"type": "about:blank", "title": "t", "status": status, "detail": "d"},
        request=httpx.Request("GET", "http://server/v1/x"),
    )
    assert edge_errors.from_response(response).exit_code == Problem(status, "t", "d").exit_code


def test_an_unreachable_server_is_3_in_both_clis() -> None:
    # A port nothing listens on: bind one, close it, then connect.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CliError) as raised, api_client(f"http://127.0.0.1:{port}", "t") as client:
        client.get("/v1/jobs")
    assert raised.value.code == ExitCode.UNREACHABLE
    assert edge_errors.Unreachable("x").exit_code == ExitCode.UNREACHABLE == 3


def test_not_registered_is_not_unreachable() -> None:
    # The collision this table was made to end: 3 meant both in the two CLIs.
    assert edge_errors.NotSetUp.exit_code == ExitCode.NOT_SET_UP
    assert edge_errors.NotSetUp.exit_code != ExitCode.UNREACHABLE


def test_the_readme_table_is_the_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, flags=re.MULTILINE))
    assert rows == {str(int(code)): meaning for code, meaning in MEANING.items()}
