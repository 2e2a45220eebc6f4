"""Which nodes of an ONNX CNN stay fp32 in its INT8 model: the convs too small for onnxruntime's
int8 kernels to pay off, and whatever only they feed.

A conv's size here is its multiply-accumulates per output position, cout · cin/group · kh · kw.
Measured by `bench/int8_layers.py` (one thread, AVX-512 VNNI; fp32 time / int8 time, six-layer
stacks): 3×3 convs at 4–8 channels (144–576) 0.57–0.95×, at 16 (2304) 1.6–2.0×; 1×1 convs at
8–16 channels (64–256) 0.82–1.0×, at 24 and up (576+) 1.1–4.3×; a 1-channel stem (144–288)
0.27–0.37×. Pruned networks are full of such convs: ResNet-56 ×0.5 keeps 2–8 channels inside
its first-stage blocks, MobileNet starts with a 1-channel stem and 16-channel depthwise and
1×1 convs at full resolution. On the pruned networks of bench/int8.py (digits) the line at 512
did at least as well as 1024 and as a rule on channel counts (every map of ≤ 16 channels fp32),
which also kept the first stage of a ×1.0 ResNet-56 fp32, where int8 wins. On 3×32×32 inputs
quantizing every node was faster still, so the pipeline times both (pruning/int8_step.py).

The convs that do go int8 are zero-padded to widths that onnxruntime's direct int8 kernels take
(`widen_for_int8`): otherwise an 8-channel conv inside a pruned ResNet-56 block, or a 40- or
136-channel depthwise conv of a pruned MobileNet, runs on a slower generic path, and the
int8 time stops falling with the FLOPs (docs/edge-client.md). The fp32 model gets the same
treatment where its depthwise convs need it (`widen_for_fp32`, applied on every export).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

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


@dataclass(frozen=True)
class Widths:
    """The channel counts a conv is zero-padded to: at least `minimum`, a multiple of `plain`
    when its output reaches only plain convs, of `depthwise` when it passes a depthwise conv."""

    minimum: int
    plain: int
    depthwise: int

    def target(self, channels: int, through_depthwise: bool) -> int:
        multiple = self.depthwise if through_depthwise else self.plain
        return -(-max(channels, self.minimum) // multiple) * multiple


# What MLAS's direct ("symmetric") int8 conv kernels take on x86: a conv with ≥ 16 output
# channels whose input and output channel counts are multiples of 4 (AVX-512) or 8 (AVX2),
# and a depthwise conv whose channel count is a multiple of 16. Any other conv falls back to
# im2col + a GEMM whose packed blocks are 16 output channels wide, and a depthwise conv to a
# generic loop.
INT8_WIDTHS = Widths(minimum=16, plain=8, depthwise=16)
# fp32: onnxruntime's depthwise convs at pruned widths (22, 43, 86, 173 channels in a pruned
# MobileNet ×0.5) run on a path several times slower than at multiples of 8, enough to make
# the pruned network slower than the unpruned one; multiples of 8 and of 16 measured the
# same on AVX-512 (docs/edge-client.md). Plain convs gain nothing from padding in fp32
# (ResNet-56 lost 8-26%, VGG-16 within ±10%), so only depthwise paths are padded.
FP32_WIDTHS = Widths(minimum=1, plain=1, depthwise=8)

# Elementwise ops that may sit between a padded conv and its consumers: whatever they make of
# a padded channel, the consumer's zero weights for it cancel it.
_ELEMENTWISE = {"Relu", "Clip", "LeakyRelu", "HardSwish", "HardSigmoid", "Sigmoid"}


def _attribute(node: onnx.NodeProto, name: str, default: int) -> int:
    for attribute in node.attribute:
        if attribute.name == name:
            return int(onnx.helper.get_attribute_value(attribute))
    return default


def widen_for_int8(
    model: onnx.ModelProto, skip: Collection[str] = ()
) -> list[tuple[str, int, int]]:
    """Zero-pad the output channels of the convs whose width keeps them off the direct int8
    kernels, in place (`widen`, `INT8_WIDTHS`); convs in `skip` (kept fp32) and what they
    feed are left alone."""
    return widen(model, INT8_WIDTHS, skip)


def widen_for_fp32(model: onnx.ModelProto) -> list[tuple[str, int, int]]:
    """Zero-pad the convs that feed a depthwise conv to widths onnxruntime's fp32 depthwise
    kernels run fast at, in place (`widen`, `FP32_WIDTHS`)."""
    return widen(model, FP32_WIDTHS)


def widen(
    model: onnx.ModelProto, widths: Widths, skip: Collection[str] = ()
) -> list[tuple[str, int, int]]:
    """Zero-pad the output channels of the convs whose width is off `widths`, in place;
    return (conv name, channels, padded channels) for each one padded.

    Pruned networks are full of such widths (8 channels inside a ResNet-56 ×1 block, 40 or
    136 channels through a MobileNet depthwise conv). A padded channel has zero weights and
    bias; the depthwise convs it passes through get zero filters for it and the convs it
    reaches zero weights for it, so the network computes exactly what it did. Only a conv
    whose output reaches nothing but convs (through elementwise ops and depthwise convs) is
    padded: an add, a pool or the graph's output would see the extra channels. Convs in
    `skip` (those kept fp32) and what they feed are left alone.
    """
    graph = model.graph
    weights = {tensor.name: tensor for tensor in graph.initializer}
    uses: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            uses.setdefault(name, []).append(node)
    graph_outputs = {info.name for info in graph.output}

    def own(node: onnx.NodeProto, index: int) -> np.ndarray | None:
        """The node's constant input `index`, unless absent or shared with another node."""
        if len(node.input) <= index or node.input[index] not in weights:
            return None
        return (
            None
            if len(uses[node.input[index]]) > 1
            else numpy_helper.to_array(weights[node.input[index]])
        )

    def pad(node: onnx.NodeProto, index: int, axis: int, extra: int) -> None:
        array = own(node, index)
        if array is not None:
            widths = [(0, 0)] * array.ndim
            widths[axis] = (0, extra)
            padded = numpy_helper.from_array(np.pad(array, widths), node.input[index])
            weights[node.input[index]].CopyFrom(padded)

    def reach(
        conv: onnx.NodeProto, channels: int
    ) -> tuple[list[onnx.NodeProto], list[onnx.NodeProto]] | None:
        """The depthwise convs and the plain convs that `conv`'s output reaches, or None when
        it reaches anything else."""
        depthwise: list[onnx.NodeProto] = []
        ends: list[onnx.NodeProto] = []
        frontier = [conv.output[0]]
        while frontier:
            tensor = frontier.pop()
            if tensor in graph_outputs:
                return None
            for user in uses.get(tensor, []):
                filters = own(user, 1) if user.op_type == "Conv" else None
                if user.name in skip or user.input[0] != tensor:
                    return None
                if user.op_type in _ELEMENTWISE:
                    frontier.append(user.output[0])
                elif filters is not None and _attribute(user, "group", 1) == 1:
                    ends.append(user)
                elif (
                    filters is not None
                    and _attribute(user, "group", 1) == channels
                    and (filters.shape[:2] == (channels, 1))
                ):
                    depthwise.append(user)
                    frontier.append(user.output[0])
                else:
                    return None
        return (depthwise, ends) if ends else None

    widened = []
    for conv in graph.node:
        weight = own(conv, 1) if conv.op_type == "Conv" else None
        if weight is None or _attribute(conv, "group", 1) != 1 or conv.name in skip:
            continue
        channels = weight.shape[0]
        reached = reach(conv, channels)
        if reached is None:
            continue
        depthwise, ends = reached
        target = widths.target(channels, through_depthwise=bool(depthwise))
        if target == channels:
            continue
        for node in [conv, *depthwise]:
            pad(node, 1, 0, target - channels)
            pad(node, 2, 0, target - channels)  # the bias, if any
        for node in depthwise:
            for attribute in node.attribute:
                if attribute.name == "group":
                    attribute.i = target
        for node in ends:
            pad(node, 1, 1, target - channels)
        widened.append((conv.name, channels, target))
    if widened:
        del graph.value_info[:]  # the shapes inferred before no longer hold
    return widened
