"""The quality sections of bench/RESULTS.md (bench/quality.py): per network, every method's
accuracy, FLOPs and params reductions over seeds, and the headline's tally of ours against the
baselines and against the unpruned network."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.aggregate import (
    DISTILLED_OURS,
    METHOD_LABELS,
    Comparison,
    Stat,
    comparisons,
    drops_from_unpruned,
    quality_cells,
)
from bench.markdown import measured_date, table


def _pct(stat: Stat) -> str:
    return f"{100 * stat.mean:.2f} ± {100 * stat.std:.2f}"


def _dataset_name(source: str) -> str:
    return source if source.startswith("builtin:") else Path(source).name


def quality_section(payload: dict[str, Any], plot: Path | None, out_dir: Path) -> list[str]:
    cells = quality_cells(payload["runs"])
    settings = payload.get("settings", {})
    datasets = ", ".join(_dataset_name(d) for d in payload.get("datasets", []))
    measured = measured_date(payload)
    lines = [f"## Compression quality vs baselines: {datasets} (measured {measured})", ""]
    lines.append(
        f"Every method starts from the same pretrained checkpoint per seed and gets "
        f"{settings.get('structure_epochs', '?')} + {settings.get('finetune_epochs', '?')} = "
        f"{cells[0].epochs if cells else '?'} epochs after it (ours: structure + weight "
        f"learning; the others: prune once, then fine-tune; scratch: re-initialised). "
        f"Accuracy, FLOPs (MACs of conv/linear) and params reductions are mean ± std over "
        f"seeds {settings.get('seeds', '?')}, counted on the pruned networks. Wall time "
        f"covers pruning and training (for ours also calibration and the per-epoch test "
        f"evaluation the engine reports), not pretraining."
    )
    if payload.get("quick"):
        widths = ", ".join(f"{a} ×{w}" for a, w in settings.get("archs", []))
        lines += [
            "",
            f"**Quick mode** (2-CPU smoke run): width multipliers {widths}, "
            f"{settings.get('pretrain_epochs', '?')} pretraining epochs and "
            f"{settings.get('structure_epochs', '?')} structure-learning epoch(s): not the "
            f"paper's settings, so read the gaps as a smoke comparison.",
        ]
    for note in payload.get("notes", []):
        lines += ["", f"Note: {note}"]
    # One section per network: an arch at each of its widths (a file may hold two).
    pretrained: dict[tuple[str, str, float], list[float]] = {}
    for info in payload.get("pretrained", []):
        network = (info["dataset"], info["arch"], float(info.get("width_mult", 0.0)))
        pretrained.setdefault(network, []).append(info["accuracy"])
    for dataset, arch, width in sorted({(c.dataset, c.arch, c.width_mult) for c in cells}):
        mine = [c for c in cells if (c.dataset, c.arch, c.width_mult) == (dataset, arch, width)]
        lines += ["", f"### {arch} (×{width:g}) on {_dataset_name(dataset)}", ""]
        checkpoints = pretrained.get((dataset, arch, width)) or pretrained.get(
            (dataset, arch, 0.0)  # files from before the width was recorded
        )
        if checkpoints:
            lines.append(f"Pretrained checkpoint accuracy: {_pct(Stat.of(checkpoints))} %.")
            lines.append("")
        lines += table(
            [
                "target FLOPs red.",
                "method",
                "accuracy %",
                "FLOPs red. %",
                "params red. %",
                "wall time s",
                "seeds",
            ],
            [
                [
                    "—" if c.target is None else f"{100 * c.target:.0f} %",
                    METHOD_LABELS.get(c.method, c.method),
                    _pct(c.accuracy),
                    _pct(c.flops_reduction),
                    _pct(c.params_reduction),
                    f"{c.seconds.mean:.1f} ± {c.seconds.std:.1f}",
                    str(c.accuracy.n),
                ]
                for c in mine
            ],
        )
    if plot is not None:
        lines += ["", f"![accuracy vs FLOPs reduction]({os.path.relpath(plot, out_dir)})"]
    return lines


def _quality_tally(found: Sequence[Comparison], *, quick: bool) -> str:
    paired = any(c.seed_gaps for c in found)
    per_baseline = []
    for ours, baseline in dict.fromkeys((c.ours, c.baseline) for c in found):
        mine = [c for c in found if (c.ours, c.baseline) == (ours, baseline)]
        counts = {k: sum(c.outcome == k for c in mine) for k in ("win", "tie", "loss")}
        seeds = {k: sum(c.every_seed == k for c in mine) for k in ("ahead", "behind")}
        per_baseline.append(
            f"{ours} vs {baseline}: {counts['win']} better, {counts['tie']} tied, "
            f"{counts['loss']} worse"
            + (
                f" (ahead on every seed in {seeds['ahead']}, behind on every seed in "
                f"{seeds['behind']})"
                if paired
                else ""
            )
        )
    clear = [c for c in found if abs(c.gap) > c.noise]
    return (
        f"Quality ({'quick mode, ' if quick else ''}mean over seeds, equal epochs): "
        + "; ".join(per_baseline)
        + f" (cells of arch × target × dataset); {len(clear)} of the {len(found)} gaps "
        f"exceed the larger seed std of the two methods."
        + (" Seed by seed, each pair of runs starts from the same checkpoint." if paired else "")
    )


def _network_at(place: tuple[str, str, float, float]) -> str:
    """(dataset, arch, width, target) as "vgg16 ×0.25, 70 %"."""
    _, arch, width, target = place
    return f"{arch} ×{width:g}, {100 * target:.0f} %"


def quality_payloads(results: dict[str, dict[str, Any]]) -> list[str]:
    """Names of the quality results (`quality`, `quality_photos`, ...), in name order."""
    return sorted(n for n, p in results.items() if n.startswith("quality") and "runs" in p)


def _is_variant(method: str) -> bool:
    """ours_distill, ours_greedy, ...: our own scheme with one choice changed."""
    return method.startswith("ours")


def _gaps(found: Sequence[Comparison]) -> str:
    return "; ".join(
        f"{c.arch} ×{c.width_mult:g} at {100 * c.target:.0f} % on {_dataset_name(c.dataset)}"
        + ("" if c.ours == "ours" else f", {c.ours}")
        + f" vs {c.baseline} by {-c.gap:.2f} points (seed std up to {c.noise:.2f})"
        for c in found
    )


def quality_headline(results: dict[str, dict[str, Any]]) -> list[str]:
    """Per quality file: the tally against each baseline, where we lose and by how much, and
    the change from the unpruned network."""
    said: list[str] = []
    for name in quality_payloads(results):
        payload = results[name]
        datasets = ", ".join(_dataset_name(d) for d in payload.get("datasets", []))
        said.append(f"**{name}** ({datasets or '?'}, measured {measured_date(payload)}):")
        cells = quality_cells(payload["runs"])
        found = comparisons(cells, payload["runs"])
        if found:
            said.append(_quality_tally(found, quick=bool(payload.get("quick"))))
            losses = sorted((c for c in found if c.outcome == "loss"), key=lambda c: c.gap)
            # A variant of ours ahead of the default is an ablation's finding, not a loss to
            # another method: said apart so that "where we lose" names baselines only.
            to_baselines = [c for c in losses if not _is_variant(c.baseline)]
            to_variants = [c for c in losses if _is_variant(c.baseline)]
            if to_baselines:
                said.append(f"Where we lose: {_gaps(to_baselines)}.")
            else:
                said.append("Ours is not behind any pruned baseline in any cell.")
            if to_variants:
                said.append(f"Where a variant of ours does better: {_gaps(to_variants)}.")
        for method in ("ours", *DISTILLED_OURS):
            drops = drops_from_unpruned(cells, method)
            if drops:
                worst = min(drops.items(), key=lambda kv: kv[1])
                best = max(drops.items(), key=lambda kv: kv[1])
                said.append(
                    f"Against the unpruned network fine-tuned with the same budget, {method} "
                    f"changes accuracy by {worst[1]:+.2f} points at worst "
                    f"({_network_at(worst[0])}) and {best[1]:+.2f} at best "
                    f"({_network_at(best[0])})."
                )
    return said
