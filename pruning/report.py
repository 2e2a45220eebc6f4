"""report.json (ALGORITHM.md, 'The report') and its two plots."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from pruning.config import CompressConfig

FLOPS_NOTE = "FLOPs are multiply-accumulates (MACs) of conv and linear layers, per sample."


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
) -> dict[str, Any]:
    def reduction(key: str) -> float:
        return 1.0 - pruned[key] / baseline[key] if baseline[key] else 0.0

    before = sum(u["channels_before"] for u in units)
    after = sum(u["channels_after"] for u in units)
    return {
        "target": {"metric": config.target.metric, "reduction": config.target.reduction},
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
        "notes": [FLOPS_NOTE],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write temp-then-rename so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    Path(tmp).replace(path)


def plot_channels(report: dict[str, Any], path: Path) -> None:
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
    ax.set_xticklabels([u["name"] for u in units], rotation=90, fontsize=7)
    ax.set_ylabel("channels")
    achieved = report["achieved"]
    arch = report["config"]["arch"]
    ax.set_title(f"{arch}: FLOPs (MACs) −{achieved['flops']:.1%}, params −{achieved['params']:.1%}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_history(report: dict[str, Any], path: Path) -> None:
    """Loss, accuracy and FLOPs of the active structure per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = report["history"]
    xs = list(range(1, len(history) + 1))
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    axes[0].plot(xs, [h["loss"] for h in history], marker="o")
    axes[0].set_title("test loss")
    axes[1].plot(xs, [h["accuracy"] for h in history], marker="o")
    axes[1].set_title("test accuracy")
    axes[2].plot(xs, [h["flops"] / 1e6 for h in history], marker="o")
    goal = (1 - report["target"]["reduction"]) * report["baseline"]["flops"] / 1e6
    if report["target"]["metric"] == "flops":
        axes[2].axhline(goal, color="gray", linestyle="--", label="target")
        axes[2].legend()
    axes[2].set_title("FLOPs (MACs) of the active structure, millions")
    structure_epochs = sum(1 for h in history if h["phase"] == "structure_learning")
    for ax in axes:
        ax.set_xlabel("epoch")
        if 0 < structure_epochs < len(history):
            ax.axvline(structure_epochs + 0.5, color="#bbb", linewidth=1)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
