"""The edge-client commands end to end against the test server."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from click.testing import Result
from typer.testing import CliRunner

from edge_client.cli import app
from edge_client.errors import AuthError, ConfigError, NothingToRollBack, NotSetUp
from edge_client.state import StateDir
from tests.edge_client.edge_test_server import ADMIN_TOKEN, EdgeTestServer, TinyModels

cli = CliRunner()


def _register(server: EdgeTestServer, state_dir: Path, token: str = ADMIN_TOKEN) -> Result:
    args = ["register", "--server", server.url, "--deployment", "cams", "--name", "cam-17"]
    return cli.invoke(app, [*args, "--token", token, "--state-dir", str(state_dir)])


def _run_once(state_dir: Path) -> Result:
    args = ["run", "--once", "--runs", "5", "--warmup", "1", "--state-dir", str(state_dir)]
    return cli.invoke(app, args)


def _status(state_dir: Path) -> dict[str, Any]:
    result = cli.invoke(app, ["status", "--json", "--state-dir", str(state_dir)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_register_stores_the_device_token_privately(
    edge_server: EdgeTestServer, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    result = _register(edge_server, state_dir)
    assert result.exit_code == 0, result.output
    config = StateDir(state_dir).load_config()
    assert config.device_id == "dev_0001" and config.deployment == "cams"
    assert config.token == edge_server.devices["dev_0001"]["token"]
    assert config.token != ADMIN_TOKEN  # the admin token is used once, never stored
    assert stat.S_IMODE((state_dir / "config.json").stat().st_mode) == 0o600
    info = _status(state_dir)
    assert info["registered"] and info["token"] == "***" and info["current"] is None

    again = _register(edge_server, state_dir)
    assert again.exit_code == ConfigError.exit_code
    assert "already registered" in again.stderr


def test_register_with_a_bad_token(edge_server: EdgeTestServer, tmp_path: Path) -> None:
    result = _register(edge_server, tmp_path / "state", token="wrong")
    assert result.exit_code == AuthError.exit_code
    assert result.stderr.startswith("error: 401")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "state" / "config.json").exists()


def test_run_once_update_report_and_rollback(
    edge_server: EdgeTestServer, tiny_models: TinyModels, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    assert _register(edge_server, state_dir).exit_code == 0
    edge_server.promote("cams", tiny_models.bytes("pruned"), baseline=tiny_models.bytes("baseline"))

    first = _run_once(state_dir)
    assert first.exit_code == 0, first.output
    assert "installed: current version 1 (fp32); reported" in first.stdout
    assert len(edge_server.reports) == 1 and edge_server.reports[0][1]["version"] == 1

    second = _run_once(state_dir)
    assert second.exit_code == 0
    assert "not_modified: current version 1 (fp32); nothing to report" in second.stdout
    assert len(edge_server.reports) == 1

    nothing = cli.invoke(app, ["rollback", "--state-dir", str(state_dir)])
    assert nothing.exit_code == NothingToRollBack.exit_code

    edge_server.promote("cams", tiny_models.bytes("pruned_v2"))
    assert _run_once(state_dir).exit_code == 0
    assert _status(state_dir)["current"]["version"] == 2
    assert len(edge_server.reports) == 2

    back = cli.invoke(app, ["rollback", "--state-dir", str(state_dir)])
    assert back.exit_code == 0 and "rolled back to version 1" in back.stdout
    info = _status(state_dir)
    assert (info["current"]["version"], info["previous"]["version"]) == (1, 2)
    assert info["poll"]["held_back"] == [info["previous"]["sha256"]]

    # bench with no --model uses current/ and its baseline
    bench = cli.invoke(
        app, ["bench", "--runs", "5", "--warmup", "0", "--json", "--state-dir", str(state_dir)]
    )
    assert bench.exit_code == 0, bench.output
    assert json.loads(bench.stdout)["speedup"] > 1


def test_run_without_registration(tmp_path: Path) -> None:
    result = _run_once(tmp_path / "nothing")
    assert result.exit_code == NotSetUp.exit_code == 8
    assert "edge-client register" in result.stderr


def test_help_documents_exit_codes() -> None:
    result = cli.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())  # rich wraps the epilog
    assert "Exit codes: 0 success" in text and "8 edge-client: the device is not registered" in text
    assert "130 stopped by SIGINT or SIGTERM" in text


def test_register_run_and_rollback_print_json(
    edge_server: EdgeTestServer, tiny_models: TinyModels, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    registered = _register_json(edge_server, state_dir)
    assert registered == {
        "device_id": "dev_0001", "name": "cam-17", "deployment": "cams", "replaced": None,
    }  # fmt: skip
    for blob in ("pruned", "pruned_v2"):
        edge_server.promote("cams", tiny_models.bytes(blob))
        ran = cli.invoke(app, ["run", "--once", "--runs", "2", "--warmup", "0", "--json",
                               "--state-dir", str(state_dir)])  # fmt: skip
        assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout) == {
        "outcome": "installed", "version": 2, "variant": "fp32", "reported": True,
    }  # fmt: skip
    back = cli.invoke(app, ["rollback", "--json", "--state-dir", str(state_dir)])
    assert back.exit_code == 0 and json.loads(back.stdout) == {"version": 1}


def _register_json(server: EdgeTestServer, state_dir: Path) -> Any:
    args = ["register", "--server", server.url, "--deployment", "cams", "--name", "cam-17"]
    result = cli.invoke(
        app, [*args, "--token", ADMIN_TOKEN, "--json", "--state-dir", str(state_dir)]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_old_option_names_still_work_with_a_note(tiny_models: TinyModels, tmp_path: Path) -> None:
    model = str(tiny_models.pruned)
    args = ["bench", "--model", model, "--runs", "2", "--warmup", "0", "--json"]
    result = cli.invoke(app, [*args, "--batch", "2", "--input-shape", "3x16x16"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["batch"] == 2
    assert "note: --batch is now --batch-size" in result.stderr
    assert "write --input-shape 3,16,16" in result.stderr
    wrong = cli.invoke(app, [*args, "--input-shape", "16,16"])
    assert wrong.exit_code == ConfigError.exit_code and "C,H,W" in wrong.stderr
