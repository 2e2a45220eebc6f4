"""`edgeprune worker --gpu N`: one worker per GPU, pinned before torch loads."""

from __future__ import annotations

import os
from typing import Any

import pytest
from typer.testing import CliRunner

import worker.main
from edgeprune.cli import app


def test_a_worker_pinned_to_a_gpu_sees_only_it_and_is_named_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")  # restored after the test
    started: dict[str, Any] = {}
    monkeypatch.setattr(worker.main, "run_worker", lambda **kwargs: started.update(kwargs))
    result = CliRunner().invoke(app, ["worker", "--queues", "gpu", "--gpu", "2"])
    assert result.exit_code == 0, result.output
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    assert started["name"].startswith("gpu2@") and started["queues"] == ["gpu"]

    named = CliRunner().invoke(app, ["worker", "--gpu", "3", "--name", "big@host"])
    assert named.exit_code == 0 and started["name"] == "big@host"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "3"


def test_without_gpu_the_environment_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    started: dict[str, Any] = {}
    monkeypatch.setattr(worker.main, "run_worker", lambda **kwargs: started.update(kwargs))
    assert CliRunner().invoke(app, ["worker"]).exit_code == 0
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1" and started["name"] is None
    bad = CliRunner().invoke(app, ["worker", "--gpu", "-1"])
    assert bad.exit_code == 2


def test_a_node_name_with_percent_h_names_this_host() -> None:
    import socket

    from worker.main import node_name

    assert node_name(["gpu"], "gpu1@%h") == f"gpu1@{socket.gethostname()}"
    assert node_name(["inspect"], None) == f"inspect@{socket.gethostname()}"
