"""INT8 post-training quantization of an exported model with onnxruntime: static, QDQ format,
per-channel weights, calibrated on a deterministic sample of the task's training split; the
convs too small for the int8 kernels stay fp32, and the others are zero-padded to widths the
direct int8 kernels take (pruning.export.narrow_layers)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from pruning.data.types import Inputs
from pruning.export.narrow_layers import MIN_INT8_MACS, name_nodes, narrow_nodes, widen_for_int8

CALIBRATION_BATCH = 32


class _Batches(CalibrationDataReader):
    def __init__(self, x: np.ndarray):
        self._batches: Iterator[np.ndarray] = iter(
            [x[i : i + CALIBRATION_BATCH] for i in range(0, len(x), CALIBRATION_BATCH)]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"input": batch}


def calibration_sample(x_train: Inputs, samples: int, seed: int) -> np.ndarray:
    """`samples` training inputs chosen by a seeded permutation: the same run, the same
    calibration."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x_train), generator=generator)[: min(samples, len(x_train))]
    return x_train[order].numpy().astype(np.float32)


def quantize_int8(
    fp32_path: Path,
    int8_path: Path,
    calibration: np.ndarray,
    *,
    min_macs: int = MIN_INT8_MACS,
    widen: bool = True,
) -> list[str]:
    """Write the INT8 (QDQ) model of `fp32_path` to `int8_path`; return the names of the nodes
    kept fp32: convs below `min_macs` multiply-accumulates per output position and what only
    they feed (0 quantizes every node). `widen` zero-pads the int8 convs' channels where
    that puts them on onnxruntime's direct int8 kernels (`narrow_layers.widen_for_int8`):
    the same outputs, and 5-37% less time on the pruned ResNet-56 and MobileNet of
    bench/int8.py (docs/edge-client.md); off, the int8 model has the fp32 model's widths."""
    with tempfile.TemporaryDirectory(prefix="edgeprune-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Folds constants and infers shapes so that every conv gets its scales (the exporter
        # has already folded the BatchNorms into the convs).
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        name_nodes(model)
        onnx.save(model, str(prepared))
        kept_fp32 = narrow_nodes(model, min_macs) if min_macs > 0 else []
        if widen and widen_for_int8(model, skip=kept_fp32):
            onnx.save(model, str(prepared))
        quantize_static(
            str(prepared),
            str(int8_path),
            _Batches(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            # u8 activations × s8 weights: the VNNI path; u8u8, s8s8 and symmetric
            # activations measured slower (docs/edge-client.md).
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=kept_fp32,
        )
    return kept_fp32


@dataclass(frozen=True)
class OnnxAccuracy:
    accuracy: float
    samples: int


def onnx_accuracy(path: Path, x: Inputs, y: torch.Tensor, batch: int = 256) -> OnnxAccuracy:
    """Top-1 accuracy of the model at `path` with onnxruntime on the CPU."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    correct = 0
    for start in range(0, len(x), batch):
        xb = x[start : start + batch].numpy().astype(np.float32)
        (logits,) = session.run(["logits"], {"input": xb})
        correct += int((np.asarray(logits).argmax(1) == y[start : start + batch].numpy()).sum())
    return OnnxAccuracy(accuracy=correct / max(len(x), 1), samples=len(x))
