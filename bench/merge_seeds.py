"""Join bench/quality.py results files that differ only in their seeds into one file.

A 3-seed run extended later with `--first-seed 3 --seeds 2` gives two files; their union is
one 5-seed measurement when every setting but the seeds matches and the machine is of the
same kind (pretraining is deterministic per CPU, so the earlier seeds' checkpoints are the
ones a rerun would give). Refused otherwise, so the merged file never mixes settings.

    python -m bench.merge_seeds quality_photos30_vgg16_structure6 \\
        quality_photos30_vgg16_structure6_seeds34 --name quality_photos30_vgg16_structure6_seeds5
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from bench.common import RESULTS, save


def merge(payloads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The union of `payloads` (runs, checkpoints, seeds); their other settings must agree."""
    first = payloads[0]
    for other in payloads[1:]:
        for field in ("quick", "datasets"):
            if other.get(field) != first.get(field):
                raise ValueError(f"the files differ in {field}")
        mine = {k: v for k, v in first["settings"].items() if k != "seeds"}
        theirs = {k: v for k, v in other["settings"].items() if k != "seeds"}
        if mine != theirs:
            differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
            raise ValueError(f"the files differ in settings {differ}")
        if other["environment"].get("cpu") != first["environment"].get("cpu"):
            raise ValueError("the files were measured on different kinds of CPU")
        # One model name covers CPUs with different SIMD features, whose kernels give other
        # checkpoints: a file that does not record them cannot be shown to match.
        features = [p["environment"].get("cpu_features") for p in (first, other)]
        if None in features:
            raise ValueError(
                "a file does not record its CPU's features (cpu_features): cannot tell "
                "whether its checkpoints are the ones this CPU would give"
            )
        if features[0] != features[1]:
            raise ValueError(
                f"the files were measured on CPUs with different features: {features[0]} "
                f"and {features[1]}"
            )
    seeds = [s for p in payloads for s in measured_seeds(p)]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the files share seeds: {sorted(seeds)}")
    return {
        "environment": first["environment"],
        "environments": [p["environment"] for p in payloads],
        "quick": first.get("quick"),
        "settings": {**first["settings"], "seeds": sorted(seeds)},
        "datasets": first.get("datasets"),
        "seconds": sum(float(p["seconds"]) for p in payloads),
        "pretrained": [c for p in payloads for c in p.get("pretrained", [])],
        "runs": [r for p in payloads for r in p["runs"]],
        "notes": [n for p in payloads for n in p.get("notes", [])],
    }


def measured_seeds(payload: dict[str, Any]) -> list[int]:
    """The seeds a file measured: all it was asked for, or, for a run stopped early
    (`complete: false`), those it has runs for."""
    asked = list(payload["settings"]["seeds"])
    if payload.get("complete", True):
        return asked
    done = {run["seed"] for run in payload["runs"]}
    return [s for s in asked if s in done]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="+", help="results files (names in bench/results)")
    parser.add_argument("--name", required=True, help="the merged file's name")
    parser.add_argument("--note", action="append", default=[], help="a note to add")
    args = parser.parse_args(argv)
    if len(args.names) < 2:
        parser.error("give at least two files to merge")
    payloads = [json.loads((RESULTS / f"{n}.json").read_text()) for n in args.names]
    merged = merge(payloads)
    merged["merged_from"] = list(args.names)
    merged["notes"] = [*args.note, *merged["notes"]]
    save(args.name, merged)


if __name__ == "__main__":
    main()
