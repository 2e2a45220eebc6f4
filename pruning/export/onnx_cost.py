"""MACs of an exported ONNX graph, counted from the graph itself (Conv, Gemm, MatMul), so that
a reduction can be checked on what a device actually runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

_COUNTED = ("Conv", "Gemm", "MatMul")


def onnx_macs(path: Path) -> int:
    """Multiply-accumulates of one batch-1 inference: conv and matrix products only, as
    `pruning.network.metrics.count_model` counts them on the torch side. Shapes are read by running
    the graph once on zeros (static shape inference loses them after a Slice or a Reshape)."""
    model = onnx.load(str(path))
    graph = model.graph
    weights = {init.name: list(init.dims) for init in graph.initializer}
    counted = [node for node in graph.node if node.op_type in _COUNTED]
    wanted = {name for node in counted for name in node.input[:2] if name not in weights}
    wanted |= {node.output[0] for node in counted}
    present = {o.name for o in graph.output}
    graph.output.extend(onnx.ValueInfoProto(name=n) for n in sorted(wanted - present))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {}
    for value in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in value.shape]
        feeds[value.name] = np.zeros(shape, dtype=np.float32)
    names = [o.name for o in session.get_outputs()]
    shapes = {n: list(a.shape) for n, a in zip(names, session.run(names, feeds), strict=True)}
    shapes.update(weights)
    total = 0
    for node in counted:
        if node.op_type == "Conv":
            weight = shapes[node.input[1]]  # (out, in/groups, kh, kw)
            total += math.prod(shapes[node.output[0]]) * math.prod(weight[1:])
        else:
            a, b = shapes[node.input[0]], shapes[node.input[1]]
            trans_b = any(att.name == "transB" and att.i for att in node.attribute)
            total += math.prod(a[:-1]) * a[-1] * (b[-2] if trans_b else b[-1])
    return total
