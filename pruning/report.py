"""report.json (ALGORITHM.md, 'The report') and its two plots.

Each entry of `units` has the unit's `name` (the module path of its conv), `channels_before`,
`channels_after` and a `role` a reader can place without the model's source: the unit's
position among the units and the size of the feature map its conv writes ("conv 3 · 16×16").
Reports written before roles existed lack the key; readers fall back to the position.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeprune.contracts.report import Report
from pruning.config import CompressConfig

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import nn

FLOPS_NOTE = "FLOPs are multiply-accumulates (MACs) of conv and linear layers, per sample."


# Below this much of the unpruned network's cost between the target and the floors, the
# allocation is pinned: on ResNet-20 ×0.5 at −85 % FLOPs (room 0.1 %) ours and uniform L1
# pruning ended with the same widths (bench/RESULTS.md, quality_photos30_resnet20_structure6).
ALLOCATION_ROOM = 0.02


def allocation_room_note(metric: str, reduction: float, reachable: float) -> str | None:
    """A report note when the target leaves the allocation (almost) no room, else None."""
    room = reachable - reduction
    if room >= ALLOCATION_ROOM:
        return None
    return (
        f"The {metric} target ({reduction:.1%}) is within {max(room, 0.0):.1%} of the largest "
        f"reduction the per-unit floors allow ({reachable:.1%}, every unit at its floor): the "
        f"allocation could place only that share of the network's {metric} above the floors, "
        "so most of what the run learned is which channels to keep and their weights. A lower "
        "target leaves structure learning room to move channels."
    )


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import torch_pruning

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_pruning": getattr(torch_pruning, "__version__", "1.6.1"),
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def build_report(
    *,
    config: CompressConfig,
    arch: str,
    data_source: str,
    input_shape: tuple[int, int, int],
    classes: list[str],
    baseline: dict[str, float],
    pruned: dict[str, float],
    units: list[dict[str, Any]],
    history: list[dict[str, Any]],
    timings: dict[str, float],
    checks: dict[str, float],
    head_reinitialised: bool,
    kept_convs: list[dict[str, str]] | None = None,
    reachable: float = 1.0,
) -> Report:
    """The report's top level (edgeprune.contracts.report.Report), but for what the pipeline
    adds once the model is exported (structure, runtime, data, int8)."""

    def reduction(key: str) -> float:
        return 1.0 - pruned[key] / baseline[key] if baseline[key] else 0.0

    before = sum(u["channels_before"] for u in units)
    after = sum(u["channels_after"] for u in units)
    room_note = allocation_room_note(config.target.metric, config.target.reduction, reachable)
    return {
        "target": {
            "metric": config.target.metric,
            "reduction": config.target.reduction,
            "reachable": reachable,
        },
        "achieved": {
            "flops": reduction("flops"),
            "params": reduction("params"),
            "channels": 1.0 - after / before if before else 0.0,
        },
        "baseline": baseline,
        "pruned": pruned,
        "units": units,
        # Convs whose output channels were not pruned, and why (units found from the graph).
        "kept_convs": kept_convs or [],
        "history": history,
        "timings": timings,
        "checks": checks,
        "config": {
            **config.to_json(),
            "arch": arch,
            "data": data_source,
            "input_shape": list(input_shape),
            "classes": classes,
            "head_reinitialised": head_reinitialised,
            "versions": _versions(),
        },
        "notes": [FLOPS_NOTE] + ([room_note] if room_note else []),
    }


def unit_roles(
    model: nn.Module, names: Sequence[str], input_shape: tuple[int, int, int]
) -> list[str]:
    """ "conv 3 · 16×16" for each unit module in `names`: its 1-based position in that list
    and the spatial size of its output, read from one forward pass of a zero sample in eval
    mode (every module's mode is restored). A unit that is a linear layer is "linear N"; one
    the forward pass never reaches has no size; a name the model lacks is "unit N"."""
    import torch
    from torch import nn

    modules = dict(model.named_modules())
    sizes: dict[str, tuple[int, ...]] = {}

    def hook(name: str) -> Any:
        def record(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            sizes.setdefault(name, tuple(int(d) for d in output.shape[2:]))

        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in names if name in modules]
    modes = {module: module.training for module in model.modules()}
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else None
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        for handle in handles:
            handle.remove()
        for module, training in modes.items():
            module.training = training
    roles = []
    for position, name in enumerate(names, start=1):
        layer = modules.get(name)
        kind = "linear" if isinstance(layer, nn.Linear) else "conv" if layer is not None else "unit"
        size = sizes.get(name)
        roles.append(f"{kind} {position}" + (f" · {'×'.join(map(str, size))}" if size else ""))
    return roles


def with_roles(
    units: list[dict[str, Any]], model: nn.Module, input_shape: tuple[int, int, int]
) -> list[dict[str, Any]]:
    """The report's units with each one's `role` added (see `unit_roles`)."""
    roles = unit_roles(model, [u["name"] for u in units], input_shape)
    return [{**unit, "role": role} for unit, role in zip(units, roles, strict=True)]


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write temp-then-rename so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    Path(tmp).replace(path)


def plot_channels(report: Report, path: Path) -> None:
    """Channels per unit before and after (like the paper's Fig. 9-11)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = report["units"]
    xs = range(len(units))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(units) + 2), 4))
    ax.bar(xs, [u["channels_before"] for u in units], color="#c7d3e3", label="before")
    ax.bar(xs, [u["channels_after"] for u in units], color="#2b6cb0", label="after")
    ax.set_xticks(list(xs))
    # Older reports have no role: their ticks are the module paths alone.
    labels = [f"{u['role']}\n{u['name']}" if u.get("role") else u["name"] for u in units]
    ax.set_xticklabels(labels, rotation=90, fontsize=7)
    ax.set_ylabel("channels")
    achieved = report["achieved"]
    arch = report["config"]["arch"]
    ax.set_title(f"{arch}: FLOPs (MACs) −{achieved['flops']:.1%}, params −{achieved['params']:.1%}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(report: Report, path: Path) -> None:
    """Loss, accuracy and FLOPs of the active structure per epoch."""
    import matplotlib.pyplot as plt

    fig = history_figure(report)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# As the dashboard names epochs: each phase counts from 1, its letter says which phase it is.
PHASE_LETTERS = {"structure_learning": "S", "weight_learning": "W"}
PHASE_NAMES = {"structure_learning": "structure learning", "weight_learning": "weight learning"}


def history_figure(report: Report) -> Figure:
    """The history plot: one tick per epoch labelled S1 S2 … W1 W2 … (never a fraction of an
    epoch), a divider where structure learning ends and each phase named above its epochs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = report["history"]
    xs = list(range(1, len(history) + 1))
    ticks = [f"{PHASE_LETTERS.get(h['phase'], '?')}{h['epoch']}" for h in history]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    axes[0].plot(xs, [h["loss"] for h in history], marker="o")
    axes[0].set_title("test loss", pad=16)
    axes[1].plot(xs, [h["accuracy"] for h in history], marker="o")
    axes[1].set_title("test accuracy", pad=16)
    axes[2].plot(xs, [h["flops"] / 1e6 for h in history], marker="o")
    goal = (1 - report["target"]["reduction"]) * report["baseline"]["flops"] / 1e6
    if report["target"]["metric"] == "flops":
        axes[2].axhline(goal, color="gray", linestyle="--", label="target")
        axes[2].legend()
    axes[2].set_title("FLOPs (MACs) of the active structure", pad=16)
    axes[2].set_ylabel("millions")
    spans: list[tuple[str, int, int]] = []  # (phase, first x, last x)
    for x, h in zip(xs, history, strict=True):
        if spans and spans[-1][0] == h["phase"]:
            spans[-1] = (h["phase"], spans[-1][1], x)
        else:
            spans.append((h["phase"], x, x))
    for ax in axes:
        ax.set_xticks(xs, ticks)
        ax.set_xlabel("epoch")
        for index, (phase, first, last) in enumerate(spans):
            if index:
                ax.axvline(first - 0.5, color="#bbb", linewidth=1, linestyle="--")
            # x in data units, y just above the plot area: the name never covers a curve.
            ax.text(
                (first + last) / 2, 1.01, PHASE_NAMES.get(phase, phase),
                transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8,
                color="#555",
            )  # fmt: skip
    fig.tight_layout()
    return fig
