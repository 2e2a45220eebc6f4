"""The two PNG figures of RESULTS.md, drawn from the aggregated numbers only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a CI box or a worker
import matplotlib.pyplot as plt

from bench.aggregate import METHOD_ORDER, Cell

_MARKERS = {"ours": "o", "pfec": "s", "tp_taylor": "^", "scratch": "x", "unpruned": "*"}


def accuracy_vs_flops(cells: Sequence[Cell], out: Path) -> Path | None:
    """Accuracy (mean ± std over seeds) vs achieved FLOPs reduction, one panel per net."""
    panels = sorted({(c.dataset, c.arch, c.width_mult) for c in cells})
    if not panels:
        return None
    fig, axes = plt.subplots(
        1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False, sharey=False
    )
    for ax, (dataset, arch, width) in zip(axes[0], panels, strict=True):
        mine = [c for c in cells if (c.dataset, c.arch, c.width_mult) == (dataset, arch, width)]
        for method in METHOD_ORDER:
            points = sorted(
                (c for c in mine if c.method == method), key=lambda c: c.flops_reduction.mean
            )
            if not points:
                continue
            if method == "unpruned":
                level = 100 * points[0].accuracy.mean
                ax.axhline(level, color="grey", linestyle="--", linewidth=1, label="unpruned")
                continue
            ax.errorbar(
                [100 * c.flops_reduction.mean for c in points],
                [100 * c.accuracy.mean for c in points],
                yerr=[100 * c.accuracy.std for c in points],
                marker=_MARKERS.get(method, "."),
                capsize=3,
                label=method,
            )
        ax.set_title(f"{arch} ×{width:g} on {Path(dataset).name}", fontsize=9)
        ax.set_xlabel("FLOPs reduction (%)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def speedup_vs_flops_ratio(rows: Sequence[dict[str, Any]], out: Path) -> Path | None:
    """Measured ONNX speedup against the theoretical FLOPs ratio (the y = x line)."""
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 4.2))

    def key(r: dict[str, Any]) -> tuple[str, int, int, int]:
        return (r["arch"], r.get("channel_multiple", 1), r["batch"], r["threads"])

    series = sorted({key(r) for r in rows if r["threads"] == 1})
    for arch, multiple, batch, threads in series:
        mine = [r for r in rows if key(r) == (arch, multiple, batch, threads)]
        ax.scatter(
            [r["flops_ratio"] for r in mine],
            [r["speedup"] for r in mine],
            marker="o" if batch == 1 else "s",
            label=f"{arch} ×{multiple}, batch {batch}",
        )
    top = max(max(r["flops_ratio"] for r in rows), max(r["speedup"] for r in rows)) * 1.1
    ax.plot(
        [1, top], [1, top], color="grey", linestyle="--", linewidth=1, label="speedup = FLOPs ratio"
    )
    ax.set_xlabel("theoretical FLOPs ratio (baseline / pruned)")
    ax.set_ylabel("measured ONNX Runtime speedup")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
