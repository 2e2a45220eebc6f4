"""onnxruntime sessions: fixed-thread options, input shapes, and the check a new model must pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .errors import ModelInvalid

# onnxruntime's type strings for the input element types a CNN may declare.
_ORT_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
}


def session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # Fixed, explicit thread counts: onnxruntime's default (all cores) makes numbers depend
    # on whatever else runs on the device, and hides the thread count from the report.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def open_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """Open a model on the CPU, or raise ModelInvalid with onnxruntime's reason."""
    try:
        return ort.InferenceSession(
            str(path), sess_options=session_options(threads), providers=["CPUExecutionProvider"]
        )
    # onnxruntime raises a zoo of pybind exception types (InvalidProtobuf, Fail,
    # InvalidGraph, NoSuchFile, ...) with no public common base but Exception.
    except Exception as exc:
        raise ModelInvalid(f"onnxruntime cannot open {path.name}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]  # concrete, batch first
    dtype: type[np.generic]


def input_spec(
    session: ort.InferenceSession, declared: Sequence[int] | None = None, batch: int = 1
) -> InputSpec:
    """The concrete input of a single-input model for `batch` samples.

    `declared` is the manifest's input shape, with or without the batch dimension
    ([C, H, W] or [N, C, H, W]); without it the model's own static dims are used.
    """
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ModelInvalid(f"expected a model with one input, it has {len(inputs)}")
    model_input = inputs[0]
    dtype = _ORT_DTYPES.get(model_input.type)
    if dtype is None:
        raise ModelInvalid(f"unsupported input type {model_input.type}")
    dims: list[int | str | None] = list(model_input.shape)
    if declared:
        sample = list(declared)
        if len(sample) == len(dims):
            sample = sample[1:]  # the manifest included a batch dimension: ours replaces it
        if len(sample) != len(dims) - 1:
            raise ModelInvalid(
                f"input {model_input.name} has rank {len(dims)}, manifest shape {list(declared)}"
            )
        for model_dim, want in zip(dims[1:], sample, strict=True):
            if isinstance(model_dim, int) and model_dim != want:
                raise ModelInvalid(
                    f"input {model_input.name} is {dims}, manifest says {list(declared)}"
                )
        shape = (batch, *sample)
    else:
        if not all(isinstance(d, int) for d in dims[1:]):
            raise ModelInvalid(
                f"input {model_input.name} has dynamic dims {dims}: give the input shape"
            )
        shape = (batch, *(int(d) for d in dims[1:] if isinstance(d, int)))
    if isinstance(dims[0], int) and dims[0] != batch:
        raise ModelInvalid(f"model has a fixed batch of {dims[0]}, asked for {batch}")
    return InputSpec(model_input.name, shape, dtype)


def check_model(
    path: Path, declared_shape: Sequence[int] | None, classes: Sequence[str] | None
) -> None:
    """Open `path` and run one inference on zeros; raise ModelInvalid if anything is off.

    This is the gate before a swap: a file with the right sha256 can still be a model
    this device's onnxruntime cannot run (a newer opset, an unsupported operator). The
    error's stage is "load" when onnxruntime cannot open it, "inference" after that.
    """
    session = open_session(path, threads=1)
    try:
        spec = input_spec(session, declared_shape, batch=1)
    except ModelInvalid as exc:
        raise ModelInvalid(str(exc), stage="inference") from exc
    try:
        outputs = session.run(None, {spec.name: np.zeros(spec.shape, dtype=spec.dtype)})
    except Exception as exc:  # same pybind exception zoo as in open_session
        raise ModelInvalid(
            f"test inference of {path.name} failed: {_first_line(exc)}", stage="inference"
        ) from exc
    first = np.asarray(outputs[0])
    if first.dtype.kind == "f" and not np.all(np.isfinite(first)):
        raise ModelInvalid(
            f"test inference of {path.name} gave non-finite outputs", stage="inference"
        )
    if classes and first.shape[-1] != len(classes):
        raise ModelInvalid(
            f"{path.name} outputs {first.shape[-1]} scores, manifest lists {len(classes)} classes",
            stage="inference",
        )
