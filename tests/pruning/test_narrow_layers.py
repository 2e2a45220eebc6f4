"""INT8 keeps the convs too small for the int8 kernels fp32 and quantizes the others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from pruning.export.narrow_layers import (
    name_nodes,
    narrow_nodes,
    widen_for_fp32,
    widen_for_int8,
)
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


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {"input": x})
    return np.asarray(logits)


def _weight_shapes(model: onnx.ModelProto) -> list[tuple[int, ...]]:
    weights = {tensor.name: tuple(tensor.dims) for tensor in model.graph.initializer}
    return [weights[node.input[1]] for node in model.graph.node if node.op_type == "Conv"]


class _Residual(nn.Module):
    """An 8-channel inner conv between two convs, then a block whose output meets an add."""

    def __init__(self, depthwise: int = 40) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU())
        self.inner = nn.Sequential(
            nn.Conv2d(16, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1)
        )
        d = depthwise
        self.depthwise = nn.Sequential(
            nn.Conv2d(16, d, 1), nn.ReLU6(), nn.Conv2d(d, d, 3, padding=1, groups=d),
            nn.ReLU6(), nn.Conv2d(d, 24, 1), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(24, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(self.inner(x) + x)
        return self.head(self.depthwise(x))


def test_widening_pads_narrow_convs_with_zero_channels_and_changes_no_output(
    tmp_path: Path,
) -> None:
    torch.manual_seed(0)
    path = tmp_path / "model.onnx"
    export_onnx(_Residual(), (1, 8, 8), path)
    model = onnx.load(str(path))
    name_nodes(model)
    before = _weight_shapes(model)
    x = np.random.default_rng(0).standard_normal((4, 1, 8, 8)).astype(np.float32)
    expected = _run(model, x)

    widened = widen_for_int8(model)
    # The 8-channel inner conv to 16 (its consumer takes 16 inputs); the 40-channel map
    # through the depthwise conv to 48; the convs that feed an add or a pool stay as they are.
    assert [(channels, target) for _, channels, target in widened] == [(8, 16), (40, 48)]
    assert _weight_shapes(model) == [
        before[0], (16, 16, 3, 3), (16, 16, 3, 3), (48, 16, 1, 1), (48, 1, 3, 3),
        (24, 48, 1, 1),
    ]  # fmt: skip
    onnx.checker.check_model(model, full_check=True)
    np.testing.assert_allclose(_run(model, x), expected, rtol=1e-5, atol=1e-5)

    # A conv kept fp32 is neither padded nor padded into.
    model = onnx.load(str(path))
    name_nodes(model)
    inner = [node.name for node in model.graph.node if node.op_type == "Conv"][1]
    assert [channels for _, channels, _ in widen_for_int8(model, skip=[inner])] == [40]


def test_fp32_export_pads_only_the_convs_feeding_a_depthwise_conv(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = _Residual(depthwise=43)
    narrow, wide = tmp_path / "narrow.onnx", tmp_path / "wide.onnx"
    export_onnx(network, (1, 8, 8), narrow, widen=False)
    # The parity check inside the export compares the padded graph with torch.
    assert export_onnx(network, (1, 8, 8), wide) <= 1e-4
    before, after = _weight_shapes(onnx.load(str(narrow))), _weight_shapes(onnx.load(str(wide)))
    # The 43-channel map through the depthwise conv to 48; the 8-channel inner conv, which
    # int8 would pad, stays: fp32 plain convs gain nothing from padding.
    assert before[3:] == [(43, 16, 1, 1), (43, 1, 3, 3), (24, 43, 1, 1)]
    assert after == [*before[:3], (48, 16, 1, 1), (48, 1, 3, 3), (24, 48, 1, 1)]
    x = np.random.default_rng(1).standard_normal((4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(
        _run(onnx.load(str(wide)), x), _run(onnx.load(str(narrow)), x), rtol=1e-5, atol=1e-5
    )
    # Already at a multiple of 8: nothing to pad.
    assert widen_for_fp32(onnx.load(str(tmp_path / "wide.onnx"))) == []


def test_quantize_int8_widens_only_when_asked(tmp_path: Path) -> None:
    torch.manual_seed(0)
    fp32 = tmp_path / "model.onnx"
    export_onnx(_Residual(), (1, 8, 8), fp32)
    calibration = np.random.default_rng(0).standard_normal((64, 1, 8, 8)).astype(np.float32)
    quantize_int8(fp32, tmp_path / "wide.onnx", calibration, min_macs=0)
    quantize_int8(fp32, tmp_path / "plain.onnx", calibration, min_macs=0, widen=False)
    wide, plain = onnx.load(str(tmp_path / "wide.onnx")), onnx.load(str(tmp_path / "plain.onnx"))
    int8_weights = {  # the quantized conv weights' output channels, in graph order
        name: [t.dims[0] for t in m.graph.initializer if t.data_type == onnx.TensorProto.INT8]
        for name, m in (("wide", wide), ("plain", plain))
    }
    assert 16 in int8_weights["wide"] and 48 in int8_weights["wide"]
    assert 48 not in int8_weights["plain"]
    x = calibration[:8]
    # The padded channels are exact zeros: the two int8 models agree to quantization noise.
    np.testing.assert_allclose(
        _run(wide, x), _run(plain, x), atol=0.05 * np.abs(_run(plain, x)).max()
    )
