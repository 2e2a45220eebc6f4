"""INT8 keeps the layers on narrow feature maps fp32 and quantizes the wide ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from pruning.export import export_onnx
from pruning.narrow_layers import name_nodes, narrow_nodes
from pruning.quantize import quantize_int8


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip


def _quantized_convs(path: Path) -> list[bool]:
    """Per conv, in graph order: does its weight come through a DequantizeLinear?"""
    graph = onnx.load(str(path)).graph
    dequantized = {
        out for node in graph.node if node.op_type == "DequantizeLinear" for out in node.output
    }
    return [node.input[1] in dequantized for node in graph.node if node.op_type == "Conv"]


def test_convs_on_narrow_maps_stay_fp32_and_the_wide_one_is_int8(tmp_path: Path) -> None:
    fp32 = tmp_path / "model.onnx"
    export_onnx(_model(), (1, 16, 16), fp32)
    calibration = np.random.default_rng(0).standard_normal((64, 1, 16, 16)).astype(np.float32)

    kept = quantize_int8(fp32, tmp_path / "int8.onnx", calibration)
    # The stem reads 1 channel, the second conv 8; only the 32 -> 32 conv is wide.
    assert _quantized_convs(tmp_path / "int8.onnx") == [False, False, True]
    assert len(kept) >= 2

    everything = quantize_int8(fp32, tmp_path / "all.onnx", calibration, narrow_channels=0)
    assert everything == [] and _quantized_convs(tmp_path / "all.onnx") == [True, True, True]


def test_narrow_nodes_counts_feature_maps_not_weights(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    export_onnx(_model(), (1, 16, 16), path)
    model = onnx.load(str(path))
    for node in model.graph.node:
        node.name = ""
    name_nodes(model)
    names = [node.name for node in model.graph.node]
    assert all(names) and len(set(names)) == len(names)
    convs = [node.name for node in model.graph.node if node.op_type == "Conv"]
    narrow = narrow_nodes(model, 8)
    assert convs[0] in narrow and convs[1] in narrow and convs[2] not in narrow
    assert narrow_nodes(model, 32) and convs[2] in narrow_nodes(model, 32)
    assert narrow_nodes(model, 0) == []
