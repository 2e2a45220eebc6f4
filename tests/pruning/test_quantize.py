"""INT8 for the edge and the self-describing ONNX models, through run_compression."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgeprune.contracts.artifacts import ALWAYS_PUBLISHED, INT8_ONNX
from pruning import int8_step
from pruning.config import CompressConfig, Target
from pruning.export.metadata import read_metadata
from pruning.export.quantize import OnnxAccuracy
from pruning.pipeline import CompressRequest, run_compression


def _request(tmp_path: Path, **config: object) -> CompressRequest:
    return CompressRequest(
        arch="vgg11",
        data="builtin:digits",
        width_mult=0.25,
        source_job="job_test",
        config=CompressConfig(
            target=Target("flops", 0.5), structure_epochs=1, finetune_epochs=2, batch_size=64,
            calibration_batches=4, augment=False, device="cpu", lr=0.05, structure_lr=0.05,
            **config,  # type: ignore[arg-type]
        ),
    )  # fmt: skip


def test_int8_is_published_with_its_accuracy_and_every_model_describes_itself(
    tmp_path: Path,
) -> None:
    result = run_compression(_request(tmp_path, quantize="int8", int8_max_drop=0.05), tmp_path)
    int8 = result.report["int8"]
    assert int8["published"] is True and INT8_ONNX in result.artifacts
    assert int8["drop"] <= 0.05 and int8["fp32_accuracy"] > 0.5  # a trained, useful model
    assert int8["calibration_samples"] == 256
    # Both plans were made (the 1-channel stem is narrow) and timed; the faster one is kept.
    plans = {c["plan"]: c for c in int8["candidates"]}
    assert set(plans) == {"narrow_convs_fp32", "all_int8"}
    assert plans["narrow_convs_fp32"]["fp32_nodes"] >= 1 and plans["all_int8"]["fp32_nodes"] == 0
    assert int8["plan"] == min(plans, key=lambda name: plans[name]["p50_ms"])
    assert int8["fp32_nodes"] == plans[int8["plan"]]["fp32_nodes"]
    # The plans are made and timed elsewhere: the job's folder holds what it publishes only.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted((*ALWAYS_PUBLISHED, INT8_ONNX))
    speed = int8["speed"]  # timed on this CPU, batch 1, one thread: a ratio, not a gate
    assert speed["fp32_p50_ms"] > 0 and speed["int8_p50_ms"] > 0
    assert speed["int8_over_fp32"] == pytest.approx(speed["fp32_p50_ms"] / speed["int8_p50_ms"])
    path = result.artifacts[INT8_ONNX]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops  # QDQ format
    logits = session.run(None, {"input": np.zeros((3, 1, 32, 32), dtype=np.float32)})[0]
    assert logits.shape == (3, 10)

    data = result.report["data"]
    for name, variant in (
        ("model.onnx", "fp32"),
        (INT8_ONNX, "int8"),
        ("baseline.onnx", "baseline"),
    ):
        meta = read_metadata(result.artifacts[name])
        assert meta["variant"] == variant
        assert meta["input_layout"] == "NCHW" and meta["input_shape"] == [1, 32, 32]
        assert meta["mean"] == pytest.approx(data["mean"]) and meta["std"] == pytest.approx(
            data["std"]
        )
        assert meta["value_scale"] == pytest.approx(1 / 16)  # digits are 0..16
        assert meta["classes"] == [str(i) for i in range(10)]
        assert meta["source_job"] == "job_test" and meta["arch"] == "vgg11"
    assert (
        read_metadata(result.artifacts["model.onnx"])["flops"] == result.report["pruned"]["flops"]
    )
    assert (
        read_metadata(result.artifacts["baseline.onnx"])["flops"]
        == result.report["baseline"]["flops"]
    )


def test_an_int8_model_that_loses_too_much_is_not_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = int8_step.onnx_accuracy

    def worse_int8(path: Path, x: object, y: object) -> OnnxAccuracy:
        measured = real(path, x, y)  # type: ignore[arg-type]
        if path.name != "model.onnx":  # as if quantization had broken every int8 plan
            return OnnxAccuracy(measured.accuracy - 0.2, measured.samples)
        return measured

    monkeypatch.setattr(int8_step, "onnx_accuracy", worse_int8)
    result = run_compression(_request(tmp_path, quantize="int8"), tmp_path)
    int8 = result.report["int8"]
    assert int8["published"] is False and int8["drop"] > 0.15  # 0.2 on top of int8's own
    assert "published fp32 only" in int8["reason"]
    assert f"{int8['drop']:.4f} below" in int8["reason"]
    assert INT8_ONNX not in result.artifacts and not (tmp_path / INT8_ONNX).exists()


def test_int8_is_off_by_default(tmp_path: Path) -> None:
    config = CompressConfig(target=Target("flops", 0.5))
    assert config.quantize == "none"
    with pytest.raises(ValueError, match="quantize must be none or int8"):
        CompressConfig(target=Target("flops", 0.5), quantize="int4")  # type: ignore[arg-type]


def test_a_device_predicting_on_raw_values_gets_the_engines_labels(tmp_path: Path) -> None:
    """The round trip: raw samples (digits' 0..16 scale, as a sensor would give them) go
    through the preprocessing the model's metadata names, and the labels equal onnxruntime's
    on the engine's own normalised tensors."""
    from edge_client.predict import predict
    from pruning.data import load_task_data

    result = run_compression(_request(tmp_path), tmp_path)
    data = load_task_data("builtin:digits")
    x = data.x_test[:40].numpy()
    mean = np.asarray(data.mean, dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(data.std, dtype=np.float32).reshape(1, -1, 1, 1)
    raw = (x * std + mean) / data.value_scale  # undo the engine's normalisation
    assert raw.min() >= -1e-3 and raw.max() <= 16 + 1e-3  # the source's own scale
    model = result.artifacts["model.onnx"]
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    expected = np.asarray(session.run(None, {"input": x})[0]).argmax(1)
    got = predict(model, raw[:, 0])  # (N, H, W): one channel, no channel axis
    assert [p.index for p in got] == expected.tolist()
    assert [p.label for p in got] == [data.classes[i] for i in expected]
    assert all(0 < p.probability <= 1 and p.top[0][0] == p.label for p in got)
