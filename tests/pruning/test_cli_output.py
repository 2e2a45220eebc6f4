"""What `edgeprune compress` prints when a run ends: lines for a person, one JSON object with
--json; the progress bars never touch stdout."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from pruning.cli.output import show_result
from pruning.cli.progress import RichProgress
from pruning.config import ProgressEvent
from pruning.pipeline import CompressResult
from pruning.report import FLOPS_NOTE


def _result(tmp_path: Path, int8: dict[str, Any] | None = None) -> CompressResult:
    report: dict[str, Any] = {
        "target": {"metric": "flops", "reduction": 0.5},
        "achieved": {"flops": 0.502, "params": 0.41, "channels": 0.3},
        "baseline": {"accuracy": 0.91, "loss": 0.3, "flops": 1000.0, "params": 200.0},
        "pruned": {"accuracy": 0.9, "loss": math.nan, "flops": 498.0, "params": 118.0},
        "data": {"mean": [0.5], "std": [0.25], "value_scale": 1 / 255},
    }
    if int8 is not None:
        report["int8"] = int8
    artifacts = {name: tmp_path / name for name in ("report.json", "model.onnx")}
    return CompressResult(out_dir=tmp_path, artifacts=artifacts, report=report)


def test_json_result_is_the_job_summary_plus_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    show_result(_result(tmp_path), tmp_path, as_json=True)
    out = capsys.readouterr().out
    document = json.loads(out)  # the whole of stdout is one JSON document
    assert document["achieved"] == {"flops": 0.502, "params": 0.41, "channels": 0.3}
    assert (document["accuracy_before"], document["accuracy_after"]) == (0.91, 0.9)
    assert (document["flops_before"], document["flops_after"]) == (1000.0, 498.0)
    assert (document["params_before"], document["params_after"]) == (200.0, 118.0)
    assert document["preprocessing"] == {
        "layout": "NCHW",
        "mean": [0.5],
        "std": [0.25],
        "value_scale": 1 / 255,
    }
    assert document["int8"] is None
    assert document["out_dir"] == str(tmp_path)
    assert document["artifacts"] == {
        "model.onnx": str(tmp_path / "model.onnx"),
        "report.json": str(tmp_path / "report.json"),
    }


def test_json_result_carries_the_int8_headline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    int8 = {"published": False, "accuracy": math.nan, "fp32_accuracy": 0.9, "drop": 0.2}
    speed = {"speed": {"int8_over_fp32": 1.7}}
    show_result(
        _result(tmp_path, {**int8, **speed, "reason": "lost 20 points"}), tmp_path, as_json=True
    )
    headline = json.loads(capsys.readouterr().out)["int8"]
    # NaN is not JSON: it is printed as null.
    assert headline == {
        "published": False,
        "accuracy": None,
        "fp32_accuracy": 0.9,
        "drop": 0.2,
        "reason": "lost 20 points",
        "speed_over_fp32": 1.7,
    }


def test_lines_for_a_person(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    show_result(_result(tmp_path), tmp_path, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "FLOPs (MACs) -50.2%  params -41.0%  accuracy 0.9100 -> 0.9000",
        f"artifacts in {tmp_path}: model.onnx, report.json",
    ]


def test_lines_for_a_person_carry_the_reports_own_notes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _result(tmp_path)
    result.report["notes"] = [FLOPS_NOTE, "The flops target (85.0%) is within 0.1% of ..."]
    show_result(result, tmp_path, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "note: The flops target (85.0%) is within 0.1% of ..."
    assert not any(FLOPS_NOTE in line for line in lines)  # every report has it: not news


def test_lines_for_a_person_say_what_int8_scored_and_bought(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    speed = {"fp32_p50_ms": 0.5, "int8_p50_ms": 0.2, "int8_over_fp32": 2.5}
    int8 = {"published": True, "accuracy": 0.895, "fp32_accuracy": 0.9, "speed": speed}
    show_result(_result(tmp_path, int8), tmp_path, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "INT8 accuracy 0.8950 (fp32 0.9000), 2.50x fp32's speed on this CPU"


def test_the_int8_line_names_the_plan_the_worker_picked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    speed = {"int8_over_fp32": 1.5}
    made = [{"plan": "narrow_convs_fp32"}, {"plan": "all_int8"}]
    int8 = {"published": True, "accuracy": 0.9, "fp32_accuracy": 0.9, "speed": speed,
            "plan": "all_int8", "candidates": made}  # fmt: skip
    show_result(_result(tmp_path, int8), tmp_path, as_json=False)
    assert (
        capsys.readouterr()
        .out.splitlines()[1]
        .endswith("1.50x fp32's speed on this CPU (plan all_int8, the faster of 2)")
    )


def test_progress_bars_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with RichProgress() as display:
        for step in (1, 2):
            display.update(
                ProgressEvent("weight_learning", 0.5, epoch=1, epochs=1, step=step, steps=2)
            )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "weight_learning" in captured.err
