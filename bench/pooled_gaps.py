"""Seed-paired accuracy gaps pooled over independent quality measurements.

One 5-seed file leaves a 0.3-point gap inside a ±2-point spread. Several files measured
apart (other CPUs give other checkpoints for the same seed, so they are independent
replicates) cannot be merged into one table (bench.merge_seeds refuses), but their paired
gaps can be pooled: each seed compares two methods that started from the same checkpoint,
so the checkpoint's own luck cancels, and the gaps of every file form one sample.

    python -m bench.pooled_gaps quality_photos30_resnet20_structure6_seeds5 \\
        quality_photos30_resnet20_seeds5 --arch resnet20 --ours ours_distill_both \\
        --versus pfec_distill tp_taylor_distill unpruned

prints, per target and method compared, the number of seed pairs, the mean gap (ours − other,
in points) with its standard error, and on how many pairs ours was ahead or behind.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import RESULTS
from bench.markdown import table


@dataclass(frozen=True)
class PooledGap:
    target: float
    versus: str
    gaps: tuple[float, ...]  # ours − versus, points, one per seed pair (all files)
    files: int  # how many files contributed pairs

    @property
    def mean(self) -> float:
        return statistics.fmean(self.gaps)

    @property
    def standard_error(self) -> float:
        if len(self.gaps) < 2:
            return math.nan
        return statistics.stdev(self.gaps) / math.sqrt(len(self.gaps))

    @property
    def ahead(self) -> int:
        return sum(g > 0 for g in self.gaps)

    @property
    def behind(self) -> int:
        return sum(g < 0 for g in self.gaps)


def _accuracies(payload: dict[str, Any], arch: str, width: float | None) -> dict[Any, float]:
    """(seed, target, method) → accuracy in points; `unpruned` rows have target None."""
    found: dict[Any, float] = {}
    for run in payload["runs"]:
        if run["arch"] != arch or (width is not None and float(run["width_mult"]) != width):
            continue
        key = (run["seed"], run.get("target_flops_reduction"), run["method"])
        if key in found:
            raise ValueError(f"two runs for {key}: give --width to pick one network")
        found[key] = 100.0 * float(run["accuracy"])
    return found


def pooled_gaps(
    payloads: Sequence[dict[str, Any]],
    *,
    arch: str,
    ours: str,
    versus: Sequence[str],
    width: float | None = None,
) -> list[PooledGap]:
    """Ours against each of `versus` at every target, seed by seed, over all `payloads`.
    `unpruned` is compared at every target (it has none of its own)."""
    gaps: dict[tuple[float, str], list[float]] = defaultdict(list)
    contributing: dict[tuple[float, str], set[int]] = defaultdict(set)
    for index, payload in enumerate(payloads):
        accuracy = _accuracies(payload, arch, width)
        for seed, target, method in list(accuracy):
            if method != ours or target is None:
                continue
            for other in versus:
                other_key = (seed, None if other == "unpruned" else target, other)
                if other_key in accuracy:
                    gaps[(target, other)].append(
                        accuracy[(seed, target, ours)] - accuracy[other_key]
                    )
                    contributing[(target, other)].add(index)
    return [
        PooledGap(target=key[0], versus=key[1], gaps=tuple(values), files=len(contributing[key]))
        for key, values in sorted(gaps.items(), key=lambda kv: (kv[0][0], versus.index(kv[0][1])))
    ]


def markdown(rows: Sequence[PooledGap], ours: str) -> list[str]:
    header = [
        "target FLOPs red.", "ours − …", "seed pairs (files)", "mean gap, points", "± s.e.",
        "ours ahead / behind",
    ]  # fmt: skip
    body = [
        [
            f"{row.target:.0%}",
            row.versus,
            f"{len(row.gaps)} ({row.files})",
            f"{row.mean:+.2f}",
            f"{row.standard_error:.2f}",
            f"{row.ahead} / {row.behind}",
        ]
        for row in rows
    ]
    note = f"Gaps are {ours} minus the named method, seed by seed from the same checkpoint."
    return [*table(header, body), "", note]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="quality results files (names in bench/results)")
    parser.add_argument("--arch", required=True)
    parser.add_argument("--width", type=float, default=None, help="width multiplier, if several")
    parser.add_argument("--ours", default="ours_distill_both")
    parser.add_argument(
        "--versus", nargs="+", default=["pfec_distill", "tp_taylor_distill", "unpruned"]
    )
    args = parser.parse_args(argv)
    payloads = [json.loads((RESULTS / f"{n}.json").read_text()) for n in args.names]
    rows = pooled_gaps(
        payloads, arch=args.arch, ours=args.ours, versus=args.versus, width=args.width
    )
    if not rows:
        parser.error(f"no seed has both {args.ours} and one of {args.versus}")
    print("\n".join(markdown(rows, args.ours)))


if __name__ == "__main__":
    main()
