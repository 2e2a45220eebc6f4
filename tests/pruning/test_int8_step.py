"""The INT8 step makes each plan, drops the ones that lose too much accuracy and publishes the
one that ran fastest on this CPU."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from pruning import int8_step
from pruning.export.onnx import export_onnx
from pruning.export.quantize import OnnxAccuracy

SHAPE = (1, 8, 8)


def _fp32_model(tmp_path: Path, stem_in: int = 1) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(stem_in, 8, 3, padding=1), nn.ReLU(),  # 72 MACs per position from 1 channel
        nn.Conv2d(8, 64, 3, padding=1), nn.ReLU(),  # 4608
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )  # fmt: skip
    path = tmp_path / "model.onnx"
    export_onnx(model, (stem_in, *SHAPE[1:]), path)
    return path


def _run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    times: dict[str, float],
    drops: dict[str, float] | None = None,
    stem_in: int = 1,
) -> dict[str, Any]:
    """The step on a small model, with the timings (ms per model name) and accuracy drops
    (per plan) it is made to measure."""

    def timed(paths: dict[str, Path], *args: object, **kwargs: object) -> dict[str, float]:
        return {name: times[name] for name in paths}

    def accuracy(path: Path, x: object, y: object) -> OnnxAccuracy:
        drop = (drops or {}).get(path.stem, 0.0)
        return OnnxAccuracy(0.9 - drop, 10)

    monkeypatch.setattr(int8_step, "alternating_p50_ms", timed)
    monkeypatch.setattr(int8_step, "onnx_accuracy", accuracy)
    fp32 = _fp32_model(tmp_path, stem_in)
    rng = np.random.default_rng(0)
    calibration = rng.standard_normal((16, stem_in, *SHAPE[1:])).astype(np.float32)
    return int8_step.quantize_for_edge(
        fp32, tmp_path / "model.int8.onnx", calibration, torch.zeros(1), torch.zeros(1),
        max_drop=0.01, input_shape=(stem_in, *SHAPE[1:]),
    )  # fmt: skip


def _convs_in_fp32(path: Path) -> int:
    graph = onnx.load(str(path)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return sum(n.op_type == "Conv" and n.input[1] not in dequantized for n in graph.node)


@pytest.mark.parametrize(
    ("faster", "convs_in_fp32", "fp32_nodes"),
    [("all_int8", 0, 0), ("narrow_convs_fp32", 1, 2)],  # the stem conv and its ReLU
)
def test_the_plan_that_ran_faster_is_published(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    faster: str,
    convs_in_fp32: int,
    fp32_nodes: int,
) -> None:
    times = {"fp32": 3.0, "all_int8": 2.0, "narrow_convs_fp32": 2.0}
    times[faster] = 1.0
    int8 = _run(tmp_path, monkeypatch, times)
    assert int8["published"] and int8["plan"] == faster
    assert int8["speed"]["int8_p50_ms"] == 1.0 and int8["speed"]["int8_over_fp32"] == 3.0
    assert {c["plan"]: c["p50_ms"] for c in int8["candidates"]} == {
        "all_int8": times["all_int8"], "narrow_convs_fp32": times["narrow_convs_fp32"],
    }  # fmt: skip
    # The published file is the chosen plan's graph, and nothing else is left beside it.
    published = tmp_path / "model.int8.onnx"
    assert _convs_in_fp32(published) == convs_in_fp32 and int8["fp32_nodes"] == fp32_nodes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.int8.onnx", "model.onnx"]


def test_a_faster_plan_that_loses_accuracy_gives_way_to_one_that_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = {"fp32": 3.0, "all_int8": 1.0, "narrow_convs_fp32": 2.0}
    int8 = _run(tmp_path, monkeypatch, times, drops={"all_int8": 0.05})
    assert int8["published"] and int8["plan"] == "narrow_convs_fp32"
    assert int8["drop"] == pytest.approx(0.0) and int8["speed"]["int8_p50_ms"] == 2.0


def test_when_every_plan_loses_too_much_nothing_is_published_and_the_reason_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = {"fp32": 3.0, "all_int8": 1.0, "narrow_convs_fp32": 2.0}
    int8 = _run(tmp_path, monkeypatch, times, drops={"all_int8": 0.2, "narrow_convs_fp32": 0.05})
    assert not int8["published"] and int8["plan"] == "narrow_convs_fp32"  # the least bad
    assert "0.0500 below fp32's 0.9000" in int8["reason"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_a_model_without_narrow_convs_has_one_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    times = {"fp32": 3.0, "narrow_convs_fp32": 1.5}
    int8 = _run(tmp_path, monkeypatch, times, stem_in=8)  # stem 8 x 8 x 9 = 576 MACs
    assert [c["plan"] for c in int8["candidates"]] == ["narrow_convs_fp32"]
    assert int8["fp32_nodes"] == 0 and _convs_in_fp32(tmp_path / "model.int8.onnx") == 0
