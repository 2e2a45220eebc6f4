"""The state folder: config permissions, atomic install, rollback, crash recovery."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge_client.errors import ConfigError, NothingToRollBack
from edge_client.manifest import Manifest
from edge_client.state import DeviceConfig, StateDir


def _manifest(version: int, sha: str) -> Manifest:
    return Manifest(deployment="cams", version=version, sha256=sha * 64, size=3, url="/x")


def _stage(state: StateDir, content: bytes) -> Path:
    staging = state.new_staging()
    (staging / "model.onnx").write_bytes(content)
    return staging


def test_config_round_trip_is_private(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    config = DeviceConfig("http://s", "cams", "dev_1", "cam-17", "secret")
    state.save_config(config)
    assert state.load_config() == config
    assert stat.S_IMODE(state.config_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.root.stat().st_mode) == 0o700


def test_missing_config_says_register(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="register"):
        StateDir(tmp_path).load_config()


def test_install_keeps_previous_and_rollback_swaps(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.install(_stage(state, b"v1"), _manifest(1, "a"))
    state.install(_stage(state, b"v2"), _manifest(2, "b"))
    current, previous = state.current(), state.previous()
    assert current is not None and previous is not None
    assert (current.manifest.version, current.model_path.read_bytes()) == (2, b"v2")
    assert (previous.manifest.version, previous.model_path.read_bytes()) == (1, b"v1")
    assert not list(tmp_path.glob("incoming*")) and not list(tmp_path.glob(".trash-*"))

    restored = state.rollback()
    assert restored.manifest.version == 1
    assert state.current().model_path.read_bytes() == b"v1"
    assert state.previous().model_path.read_bytes() == b"v2"
    assert state.load_poll().held_back == ["b" * 64]

    # Rolling back again returns to v2 and releases it.
    state.rollback()
    assert state.current().manifest.version == 2
    assert state.load_poll().held_back == ["a" * 64]


def test_rollback_without_previous(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.install(_stage(state, b"v1"), _manifest(1, "a"))
    with pytest.raises(NothingToRollBack):
        state.rollback()
    assert state.current().model_path.read_bytes() == b"v1"


def test_recover_finishes_an_install_cut_between_renames(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.install(_stage(state, b"v1"), _manifest(1, "a"))
    state.install(_stage(state, b"v2"), _manifest(2, "b"))
    # Simulate a power cut after "current -> previous" but before "incoming -> current".
    staging = _stage(state, b"v3")
    from edge_client.state import write_json_atomic

    write_json_atomic(staging / "manifest.json", _manifest(3, "c").to_json())
    os.rename(staging, state.incoming_dir)
    os.rename(state.previous_dir, tmp_path / ".trash-dead")
    os.rename(state.current_dir, state.previous_dir)
    assert state.current() is None

    state.recover()
    assert state.current().model_path.read_bytes() == b"v3"
    assert state.previous().model_path.read_bytes() == b"v2"
    assert not (tmp_path / ".trash-dead").exists()


def test_recover_undoes_a_rollback_cut_after_its_first_rename(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    state.install(_stage(state, b"v1"), _manifest(1, "a"))
    state.install(_stage(state, b"v2"), _manifest(2, "b"))
    os.rename(state.current_dir, tmp_path / ".swap")  # rollback's first step only
    state.recover()
    assert state.current().model_path.read_bytes() == b"v2"
    assert state.previous().model_path.read_bytes() == b"v1"


def test_recover_drops_unfinished_staging(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    staging = _stage(state, b"half")
    state.recover()
    assert not staging.exists()
    assert state.current() is None
