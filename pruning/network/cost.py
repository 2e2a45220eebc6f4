"""The exact cost model of a masked network: FLOPs (MACs of conv and linear layers) and
parameters as functions of the active channel count of every unit.

Each conv/linear/BN layer's input and output widths are a fixed part plus the channels of the
units coupled to them (found by the dependency graph; several units after a concatenation),
so cost(a) is a sum of products of two such widths. It counts exactly what
`pruning.network.metrics.count_model` counts on the pruned network.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pruning.network.dependency import Coupling


@dataclass(frozen=True)
class _Layers:
    kind: np.ndarray  # 0 conv, 1 depthwise conv (groups follow the unit), 2 linear, 3 batchnorm
    spatial: np.ndarray  # Kh·Kw·Hout·Wout / groups for convs (groups fixed), 1 otherwise
    kernel: np.ndarray  # Kh·Kw / groups for parameter counting
    in_full: np.ndarray
    out_full: np.ndarray
    in_share: np.ndarray  # L × U: channels of each layer's input that belong to each unit
    out_share: np.ndarray
    bias: np.ndarray  # 1 when the layer has a bias (BN: weight and bias count as 2)


def _share_matrix(rows: Sequence[dict[int, int]], units: int) -> np.ndarray:
    matrix = np.zeros((len(rows), units))
    for layer, share in enumerate(rows):
        for unit, channels in share.items():
            matrix[layer, unit] = channels
    return matrix


class CostModel:
    def __init__(self, layers: _Layers, capacity: Sequence[int], fixed_params: int):
        self._layers = layers
        self.capacity = np.asarray(capacity, dtype=np.float64)
        self._fixed_params = fixed_params

    @classmethod
    def build(
        cls,
        model: nn.Module,
        example_input: Tensor,
        couplings: Sequence[Coupling],
        capacity: Sequence[int],
    ) -> CostModel:
        """`example_input` is one sample (batch 1); output sizes are read from a forward pass."""
        out_hw: dict[str, tuple[int, int]] = {}
        handles = []
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d):

                def record(_m: nn.Module, _i: object, out: Tensor, name: str = name) -> None:
                    out_hw[name] = (int(out.shape[-2]), int(out.shape[-1]))

                handles.append(module.register_forward_hook(record))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                model(example_input)
        finally:
            model.train(was_training)
            for handle in handles:
                handle.remove()

        shares: dict[tuple[str, str], dict[int, int]] = {}
        for c in couplings:
            share = shares.setdefault((c.module, c.dim), {})
            share[c.unit] = share.get(c.unit, 0) + c.channels
        rows: list[tuple[int, float, float, int, int, dict[int, int], dict[int, int], int]] = []
        counted = 0
        for name, module in model.named_modules():
            in_unit = shares.get((name, "in"), {})
            out_unit = shares.get((name, "out"), {})
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                hw = out_hw.get(name)
                if hw is None:
                    continue  # not used in forward: contributes no FLOPs
                depthwise = (
                    module.groups > 1 and module.groups == module.in_channels == module.out_channels
                )
                if depthwise:
                    in_unit = out_unit = out_unit or in_unit
                groups = 1 if depthwise else module.groups
                kind = 1 if depthwise else 0
                rows.append(
                    (
                        kind,
                        kh * kw * hw[0] * hw[1] / groups,
                        kh * kw / groups,
                        module.in_channels,
                        module.out_channels,
                        in_unit,
                        out_unit,
                        int(module.bias is not None),
                    )
                )
            elif isinstance(module, nn.Linear):
                rows.append(
                    (
                        2,
                        1.0,
                        1.0,
                        module.in_features,
                        module.out_features,
                        in_unit,
                        out_unit,
                        int(module.bias is not None),
                    )
                )
            elif isinstance(module, nn.BatchNorm2d):
                rows.append(
                    (3, 0.0, 0.0, 0, module.num_features, {}, out_unit, 2 * int(module.affine))
                )
            else:
                continue
            counted += sum(p.numel() for p in module.parameters(recurse=False))
        total_params = sum(p.numel() for p in model.parameters())
        columns: list[tuple[Any, ...]] = list(zip(*rows, strict=True)) if rows else [()] * 8
        layers = _Layers(
            kind=np.asarray(columns[0], dtype=np.int64),
            spatial=np.asarray(columns[1], dtype=np.float64),
            kernel=np.asarray(columns[2], dtype=np.float64),
            in_full=np.asarray(columns[3], dtype=np.float64),
            out_full=np.asarray(columns[4], dtype=np.float64),
            in_share=_share_matrix(columns[5], len(capacity)),
            out_share=_share_matrix(columns[6], len(capacity)),
            bias=np.asarray(columns[7], dtype=np.float64),
        )
        return cls(layers, capacity, fixed_params=total_params - counted)

    def _widths(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """In and out widths of every layer for a batch of allocations (B × U) → (B × L)."""
        layers = self._layers
        removed = 1.0 - active / self.capacity  # B × U: fraction of each unit pruned away
        in_w = layers.in_full - removed @ layers.in_share.T
        out_w = layers.out_full - removed @ layers.out_share.T
        return in_w, out_w

    def evaluate(self, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flops, params) for a batch of allocations B × U."""
        layers = self._layers
        in_w, out_w = self._widths(active)
        depthwise = layers.kind == 1
        batchnorm = layers.kind == 3
        # Depthwise convs: in = out = groups, so one width enters the product.
        pair = np.where(depthwise, out_w, in_w * out_w)
        flops = np.where(batchnorm, 0.0, layers.spatial * pair).sum(axis=1)
        weights = np.where(batchnorm, 0.0, layers.kernel * pair)
        params = (weights + layers.bias * out_w).sum(axis=1) + self._fixed_params
        return flops, params

    def cost(self, active: Sequence[int] | np.ndarray, metric: str) -> float:
        flops, params = self.evaluate(np.asarray(active, dtype=np.float64)[None, :])
        return float(flops[0] if metric == "flops" else params[0])

    def costs(self, active: np.ndarray, metric: str) -> np.ndarray:
        flops, params = self.evaluate(active)
        return flops if metric == "flops" else params
