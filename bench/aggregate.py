"""Seeds → mean ± std, and the comparisons the headline is made of. No formatting here."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# Methods in the order tables list them; the pruned ones are those ours is compared with.
METHOD_ORDER = (
    "ours", "ours_constant", "ours_cost_aware", "ours_greedy", "ours_greedy_cosine",
    "ours_discovered", "ours_saliency_correction", "ours_saliency_selection", "ours_distill",
    "ours_distill_both", "ours_distill_residual", "pfec", "tp_taylor", "pfec_distill",
    "tp_taylor_distill", "scratch", "unpruned",
)  # fmt: skip
# What ours (the default target fit) is compared with: the baselines and the other fits.
PRUNED_BASELINES = (
    "pfec", "tp_taylor", "scratch", "ours_constant", "ours_cost_aware", "ours_greedy",
    "ours_greedy_cosine", "ours_discovered", "ours_saliency_correction",
    "ours_saliency_selection", "ours_distill", "ours_distill_both", "ours_distill_residual",
    "ours_distill_pooled", "ours_distill_cost_aware", "ours_distill_cost_sqrt",
    "ours_cost_aware_cosine",
)  # fmt: skip
# Baselines fine-tuned against the checkpoint as teacher: like with like, they are compared
# with ours distilled the same way, the first of DISTILLED_OURS a cell has (both phases is
# what `--distill` does by default), never with undistilled ours.
DISTILLED_BASELINES = ("pfec_distill", "tp_taylor_distill")
DISTILLED_OURS = ("ours_distill_both", "ours_distill")
TIE_POINTS = 0.01  # accuracy gaps below this many points are ties
METHOD_LABELS = {
    "ours": "ours (structure + weight learning)",
    "ours_constant": "ours, constant release s (as the paper states it)",
    "ours_cost_aware": "ours, cost-aware significance, constant s",
    "ours_cost_aware_cosine": "ours, cost-aware fit (cosine s)",
    "ours_greedy": "ours, former greedy target fit, constant s",
    "ours_greedy_cosine": "ours, former greedy target fit, cosine s",
    "ours_discovered": "ours, units discovered from the graph",
    "ours_saliency_correction": "ours, last channels by saliency per cost (former default)",
    "ours_saliency_selection": "ours, a_l most salient channels each epoch (former default)",
    "ours_distill": "ours, weight learning also distils the checkpoint (w 0.5, T 4)",
    "ours_distill_both": "ours, both phases distil the checkpoint (w 0.5, T 4)",
    "ours_distill_residual": "ours, both phases distil, residual channels pruned too",
    "ours_distill_pooled": "ours, both phases distil, release pooled over units",
    "ours_distill_cost_aware": "ours, both phases distil, cost-aware fit (cosine s)",
    "ours_distill_cost_sqrt": "ours, both phases distil, cost-aware fit per √cost",
    "pfec": "PFEC: uniform L1 + fine-tune",
    "tp_taylor": "torch-pruning Taylor, global + fine-tune",
    "pfec_distill": "PFEC, fine-tune distils the checkpoint (w 0.5, T 4)",
    "tp_taylor_distill": "torch-pruning Taylor, fine-tune distils the checkpoint (w 0.5, T 4)",
    "scratch": "ours' structure from scratch",
    "unpruned": "unpruned, fine-tuned",
}


@dataclass(frozen=True)
class Stat:
    mean: float
    std: float  # sample std over seeds; 0 for a single seed
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        if not values:
            raise ValueError("no values")
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(statistics.fmean(values), std, len(values))


@dataclass(frozen=True)
class Cell:
    """One method at one target on one (dataset, arch), over its seeds."""

    dataset: str
    arch: str
    width_mult: float
    target: float | None  # None: the unpruned reference
    method: str
    accuracy: Stat
    flops_reduction: Stat
    params_reduction: Stat
    seconds: Stat
    epochs: int


def _method_rank(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def quality_cells(runs: Iterable[dict[str, Any]]) -> list[Cell]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        key = (
            run["dataset"],
            run["arch"],
            float(run["width_mult"]),
            run.get("target_flops_reduction"),
            run["method"],
        )
        groups[key].append(run)
    cells = [
        Cell(
            dataset=key[0],
            arch=key[1],
            width_mult=key[2],
            target=key[3],
            method=key[4],
            accuracy=Stat.of([r["accuracy"] for r in rows]),
            flops_reduction=Stat.of([r["flops_reduction"] for r in rows]),
            params_reduction=Stat.of([r["params_reduction"] for r in rows]),
            seconds=Stat.of([r["seconds"] for r in rows]),
            epochs=int(rows[0].get("epochs", 0)),
        )
        for key, rows in groups.items()
    ]
    cells.sort(
        key=lambda c: (
            c.dataset,
            c.arch,
            -1.0 if c.target is None else c.target,
            _method_rank(c.method),
        )
    )
    return cells


@dataclass(frozen=True)
class Comparison:
    """Ours vs one baseline at one target: the accuracy gap in points (ours − baseline)."""

    dataset: str
    arch: str
    width_mult: float
    target: float
    baseline: str
    gap: float
    noise: float  # the larger of the two seed stds, in points
    ours: str = "ours"  # which of ours: a distilled one against the distilled baselines
    # Ours − baseline seed by seed (both start from that seed's checkpoint), in points: the
    # paired view, free of the spread between checkpoints that `noise` carries.
    seed_gaps: tuple[float, ...] = ()

    @property
    def every_seed(self) -> str | None:
        """ "ahead" or "behind" when ours is so on every one of two or more seeds."""
        if len(self.seed_gaps) < 2:
            return None
        if all(g >= TIE_POINTS for g in self.seed_gaps):
            return "ahead"
        if all(g <= -TIE_POINTS for g in self.seed_gaps):
            return "behind"
        return None

    @property
    def outcome(self) -> str:
        """ "win", "tie" or "loss": equal means (to 0.01 points) are a tie, not a loss."""
        if abs(self.gap) < TIE_POINTS:
            return "tie"
        return "win" if self.gap > 0 else "loss"


def comparisons(cells: Sequence[Cell], runs: Iterable[dict[str, Any]] = ()) -> list[Comparison]:
    """Ours against each baseline in the same place; `runs` (the cells' own) add the gaps
    seed by seed."""
    index = {(c.dataset, c.arch, c.width_mult, c.target, c.method): c for c in cells}
    by_seed = {
        (
            r["dataset"], r["arch"], float(r["width_mult"]), r.get("target_flops_reduction"),
            r["method"], r.get("seed"),
        ): r["accuracy"]
        for r in runs
    }  # fmt: skip
    seeds = sorted({key[-1] for key in by_seed if key[-1] is not None})
    found = []
    for cell in cells:
        if cell.target is None:
            continue
        place = (cell.dataset, cell.arch, cell.width_mult, cell.target)
        if cell.method == "ours":
            baselines = PRUNED_BASELINES
        elif cell.method == distilled_reference(index, place):
            baselines = DISTILLED_BASELINES
        else:
            continue
        for baseline in baselines:
            other = index.get((*place, baseline))
            if other is None:
                continue
            found.append(
                Comparison(
                    dataset=cell.dataset,
                    arch=cell.arch,
                    width_mult=cell.width_mult,
                    target=cell.target,
                    baseline=baseline,
                    gap=100 * (cell.accuracy.mean - other.accuracy.mean),
                    noise=100 * max(cell.accuracy.std, other.accuracy.std),
                    ours=cell.method,
                    seed_gaps=tuple(
                        100 * (by_seed[(*place, cell.method, s)] - by_seed[(*place, baseline, s)])
                        for s in seeds
                        if (*place, cell.method, s) in by_seed and (*place, baseline, s) in by_seed
                    ),
                )
            )
    return found


def distilled_reference(
    index: dict[tuple[Any, ...], Cell], place: tuple[str, str, float, float]
) -> str | None:
    """The distilled ours that the distilled baselines at `place` are compared with."""
    return next((m for m in DISTILLED_OURS if (*place, m) in index), None)


def drops_from_unpruned(
    cells: Sequence[Cell], method: str = "ours"
) -> dict[tuple[str, str, float, float], float]:
    """`method`'s accuracy minus the unpruned model's (same network, same budget), in points,
    by (dataset, arch, width, target)."""
    unpruned = {(c.dataset, c.arch, c.width_mult): c for c in cells if c.method == "unpruned"}
    drops = {}
    for cell in cells:
        reference = unpruned.get((cell.dataset, cell.arch, cell.width_mult))
        if cell.method == method and cell.target is not None and reference is not None:
            drops[(cell.dataset, cell.arch, cell.width_mult, cell.target)] = 100 * (
                cell.accuracy.mean - reference.accuracy.mean
            )
    return drops
