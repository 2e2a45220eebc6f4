"""Which nodes of an ONNX CNN stay fp32 in its INT8 model: the convs too small for onnxruntime's
int8 kernels to pay off, and whatever only they feed.

A conv's size here is its multiply-accumulates per output position, cout · cin/group · kh · kw.
Measured by `bench/int8_layers.py` (one thread, AVX-512 VNNI; fp32 time / int8 time, six-layer
stacks): 3×3 convs at 4–8 channels (144–576) 0.57–0.95×, at 16 (2304) 1.6–2.0×; 1×1 convs at
8–16 channels (64–256) 0.82–1.0×, at 24 and up (576+) 1.1–4.3×; a 1-channel stem (144–288)
0.27–0.37×. Pruned networks are full of such convs: ResNet-56 ×0.5 keeps 2–8 channels inside
its first-stage blocks, MobileNet starts with a 1-channel stem and 16-channel depthwise and
1×1 convs at full resolution. On the pruned networks of bench/int8.py the line at 512 did at
least as well as 1024 and as a rule on channel counts (every map of ≤ 16 channels fp32), which
also kept the first stage of a ×1.0 ResNet-56 fp32, where int8 wins.
"""

from __future__ import annotations

import onnx

# Convs below this many multiply-accumulates per output position stay fp32.
MIN_INT8_MACS = 512


def name_nodes(model: onnx.ModelProto) -> None:
    """Give every unnamed node a unique name: the quantizer excludes nodes by name."""
    taken = {node.name for node in model.graph.node}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"node_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)


def _macs_per_position(node: onnx.NodeProto, weights: dict[str, onnx.TensorProto]) -> int | None:
    weight = weights.get(node.input[1]) if len(node.input) > 1 else None
    if weight is None or len(weight.dims) < 3:
        return None  # a weight computed at run time: leave the node to the quantizer
    macs = 1
    for dim in weight.dims:  # (cout, cin/group, kh, kw)
        macs *= dim
    return macs


def narrow_nodes(model: onnx.ModelProto, min_macs: int = MIN_INT8_MACS) -> list[str]:
    """Names of the convs below `min_macs` multiply-accumulates per output position, and of the
    other nodes whose every activation input comes from such a node or the graph input (the
    ReLUs, adds and pools of an fp32 stretch, so that no Q/DQ pair sits inside it for
    onnxruntime to fuse back into an int8 kernel). A node with any int8 input is quantized."""
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    producer = {output: node.name for node in graph.node for output in node.output}
    graph_inputs = {info.name for info in graph.input} - set(weights)
    fp32: list[str] = []
    kept: set[str] = set()
    for node in graph.node:  # ONNX graphs are topologically sorted
        if node.op_type == "Conv":
            macs = _macs_per_position(node, weights)
            narrow = macs is not None and macs < min_macs
        else:
            inputs = [name for name in node.input if name and name not in weights]
            narrow = bool(inputs) and all(
                name in graph_inputs or producer.get(name) in kept for name in inputs
            )
            # The stem's input is the graph input: only what an fp32 conv feeds follows it.
            narrow = narrow and any(producer.get(name) in kept for name in inputs)
        if narrow:
            kept.add(node.name)
            fp32.append(node.name)
    return fp32
