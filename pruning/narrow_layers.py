"""Which nodes of an ONNX CNN stay fp32 in its INT8 model: those that read or write a feature
map of at most a few channels.

onnxruntime's int8 convolutions (x86 MLAS) pay off only on wide enough GEMMs. Measured by
`bench/int8_layers.py` (one thread, AVX-512 VNNI; fp32 time / int8 time, six-layer stacks):
3×3 convs at 4–8 channels 0.57–0.95×, at 16 1.6–2.0×; 1×1 convs at 8–16 channels
0.82–1.0×, at 24 and up 1.1–4.3×; 3×3 depthwise convs at 16–64 channels 0.33–0.71× (at
43 and 86, widths where fp32 leaves its blocked kernels, 1.6–2.0×); a 1-channel stem conv
0.27–0.37×. A 16-channel map often feeds a depthwise or 1×1 conv too, so at most 16 channels
stays fp32: of ≤ 15, 16, 23 and 31 it was the best on the pruned digits networks overall.
"""

from __future__ import annotations

import onnx

# Feature maps with at most this many channels stay fp32 (bench/results/int8_layers.json).
NARROW_CHANNELS = 16


def _channels(model: onnx.ModelProto) -> dict[str, int]:
    """Channel count (dim 1) of every NCHW tensor whose shape inference knows it."""
    graph = onnx.shape_inference.infer_shapes(model).graph
    weights = {tensor.name for tensor in graph.initializer}
    channels = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        if info.name not in weights and len(dims) == 4 and dims[1].HasField("dim_value"):
            channels[info.name] = dims[1].dim_value
    return channels


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


def narrow_nodes(model: onnx.ModelProto, max_channels: int = NARROW_CHANNELS) -> list[str]:
    """Names of the nodes with an input or output feature map of at most `max_channels`
    channels (weights and other initializers do not count). Keeping the convs, adds and
    ReLUs around a narrow map together in fp32 leaves no Q/DQ pair there for onnxruntime to
    fuse back into an int8 kernel."""
    channels = _channels(model)
    return [
        node.name
        for node in model.graph.node
        if any(channels.get(name, max_channels + 1) <= max_channels for name in _io(node))
    ]


def _io(node: onnx.NodeProto) -> list[str]:
    return [name for name in [*node.input, *node.output] if name]
