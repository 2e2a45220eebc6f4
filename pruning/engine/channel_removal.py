"""Step 3 of a compression run: the inactive channels removed for real, checked against
the masked network they came from."""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from pruning.engine.results import PruningMismatch
from pruning.engine.run import CompressionRun
from pruning.models.registry import ModelSpec
from pruning.network.units import unit_widths
from pruning.precision import prepare_for
from pruning.structure.learner import StructureLearner


def remove_channels(run: CompressionRun, learner: StructureLearner) -> tuple[ModelSpec, float]:
    """Remove the masked-off channels; returns the pruned structure and the largest output
    difference from the masked network (raises `PruningMismatch` past the tolerance)."""
    started = time.perf_counter()
    run.progress.emit("pruning", message="removing inactive channels")
    masks = learner.masks()
    check_x = run.data.x_test[:64].to(run.device)
    run.model.eval()
    with torch.no_grad():
        masked_out = run.model(check_x)
    learner.gates.remove()
    run.adapter.remove_channels(masks)
    prepare_for(run.model, run.device)  # the new, narrower weights in the device's layout
    with torch.no_grad():
        pruned_out = run.model(check_x)
    diff = float((masked_out - pruned_out).abs().max())
    # 1e-4 relative to the logits' scale (absolute below 1): float32 sums in another
    # order (a GPU's kernels, TF32) differ by more than 1e-4 on large logits.
    tolerance = 1e-4 * max(1.0, float(masked_out.abs().max()))
    if not diff <= tolerance:
        raise PruningMismatch(
            f"pruned network differs from the masked one by {diff:.3g} (> {tolerance:.3g})"
        )
    run.timings["pruning"] = time.perf_counter() - started
    pruned_spec = replace(run.spec, widths=tuple(unit_widths(run.model, run.units)))
    if not run.discovery.declared:  # rebuilt by removing channels from these convs
        hw = (int(run.example.shape[-2]), int(run.example.shape[-1]))
        pruned_spec = replace(pruned_spec, unit_convs=tuple(u.conv for u in run.units), input_hw=hw)
    return pruned_spec, diff
