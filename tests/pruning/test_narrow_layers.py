"""INT8 keeps the convs too small for the int8 kernels fp32 and quantizes the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from pruning.export.narrow_layers import name_nodes, narrow_nodes
from pruning.export.onnx import export_onnx
from pruning.export.quantize import quantize_int8


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),  # 72 MACs per position
        nn.Conv2d(8, 4, 1), nn.ReLU(),  # 32
        nn.Conv2d(4, 32, 3, padding=1), nn.ReLU(),  # 1152
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),  # 9216
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10),
    )  # fmt: skip


def _weights_dequantized(path: Path) -> dict[str, bool]:
    """Per op type of each node with a weight, in graph order: does it come through a
    DequantizeLinear?"""
    graph = onnx.load(str(path)).graph
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    return {f"conv{i}": node.input[1] in dequantized for i, node in enumerate(convs)}


def test_small_convs_stay_fp32_and_the_large_ones_are_int8(tmp_path: Path) -> None:
    fp32 = tmp_path / "model.onnx"
    export_onnx(_model(), (1, 16, 16), fp32)
    calibration = np.random.default_rng(0).standard_normal((64, 1, 16, 16)).astype(np.float32)

    kept = quantize_int8(fp32, tmp_path / "int8.onnx", calibration)
    assert _weights_dequantized(tmp_path / "int8.onnx") == {
        "conv0": False, "conv1": False, "conv2": True, "conv3": True,
    }  # fmt: skip
    assert len(kept) == 4  # the two small convs and their ReLUs

    everything = quantize_int8(fp32, tmp_path / "all.onnx", calibration, min_macs=0)
    assert everything == []
    assert all(_weights_dequantized(tmp_path / "all.onnx").values())


def test_narrow_nodes_follows_the_small_convs_only_as_far_as_they_feed(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    export_onnx(_model(), (1, 16, 16), path)
    model = onnx.load(str(path))
    for node in model.graph.node:
        node.name = ""
    name_nodes(model)
    names = [node.name for node in model.graph.node]
    assert all(names) and len(set(names)) == len(names)
    ops = {node.name: node.op_type for node in model.graph.node}

    kept = narrow_nodes(model, 512)
    assert [ops[name] for name in kept] == ["Conv", "Relu", "Conv", "Relu"]
    assert [ops[name] for name in narrow_nodes(model, 2000)] == ["Conv", "Relu"] * 3
    # Every conv small: the pool, flatten and classifier they feed stay fp32 too.
    assert len(narrow_nodes(model, 10**6)) == len(model.graph.node)
