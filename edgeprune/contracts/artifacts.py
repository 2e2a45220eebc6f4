"""The names a succeeded job publishes its files under (`GET /v1/jobs/{id}/artifacts/{name}`),
which are also the file names `edgeprune compress` writes into its output folder."""

from __future__ import annotations

MODEL_ONNX = "model.onnx"  # the pruned model, fp32: what a deployment serves
BASELINE_ONNX = "baseline.onnx"  # the unpruned model, for the device's speedup measurement
INT8_ONNX = "model.int8.onnx"  # only when the job asked for int8 and it was accurate enough
PRUNED_PT = "pruned.pt"  # the pruned weights with the structure that rebuilds them
STRUCTURE_JSON = "structure.json"
REPORT_JSON = "report.json"  # ALGORITHM.md, 'The report'
CHANNELS_PNG = "channels.png"
HISTORY_PNG = "history.png"

# What every succeeded job publishes (INT8_ONNX comes on top, when published).
ALWAYS_PUBLISHED = (
    MODEL_ONNX,
    BASELINE_ONNX,
    PRUNED_PT,
    STRUCTURE_JSON,
    REPORT_JSON,
    CHANNELS_PNG,
    HISTORY_PNG,
)
