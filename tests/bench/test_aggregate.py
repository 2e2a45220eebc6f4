"""The comparisons the RESULTS.md headline is made of: like with like, network by network."""

from __future__ import annotations

from typing import Any

from bench.aggregate import (
    DISTILLED_BASELINES,
    comparisons,
    drops_from_unpruned,
    quality_cells,
)
from bench.report_quality import quality_headline


def _run(method: str, width: float, accuracy: float, target: float | None = 0.7) -> dict[str, Any]:
    return {
        "dataset": "builtin:photos", "arch": "mobilenet", "width_mult": width, "seed": 0,
        "method": method, "target_flops_reduction": None if method == "unpruned" else target,
        "accuracy": accuracy, "flops_reduction": 0.7, "params_reduction": 0.6, "seconds": 1.0,
    }  # fmt: skip


def test_two_widths_of_one_arch_are_two_networks() -> None:
    """×0.25 is compared with ×0.25 only: a file with both widths once paired them across."""
    runs = [
        _run("ours", 0.25, 0.50), _run("pfec", 0.25, 0.40), _run("unpruned", 0.25, 0.60),
        _run("ours", 0.5, 0.80), _run("pfec", 0.5, 0.78), _run("unpruned", 0.5, 0.79),
    ]  # fmt: skip
    found = {(c.width_mult, c.baseline): round(c.gap, 6) for c in comparisons(quality_cells(runs))}
    assert found == {(0.25, "pfec"): 10.0, (0.5, "pfec"): 2.0}
    drops = drops_from_unpruned(quality_cells(runs))
    assert {k[2]: round(v, 6) for k, v in drops.items()} == {0.25: -10.0, 0.5: 1.0}


def test_distilled_baselines_meet_distilled_ours_and_undistilled_ones_meet_ours() -> None:
    runs = [
        _run("ours", 0.5, 0.70), _run("pfec", 0.5, 0.65),
        _run("ours_distill", 0.5, 0.74), _run("ours_distill_both", 0.5, 0.76),
        _run("pfec_distill", 0.5, 0.75), _run("tp_taylor_distill", 0.5, 0.77),
    ]  # fmt: skip
    found = {(c.ours, c.baseline): round(c.gap, 6) for c in comparisons(quality_cells(runs))}
    assert found == {
        ("ours", "pfec"): 5.0,
        ("ours", "ours_distill"): -4.0,
        ("ours", "ours_distill_both"): -6.0,
        ("ours_distill_both", "pfec_distill"): 1.0,  # both phases: the default with --distill
        ("ours_distill_both", "tp_taylor_distill"): -1.0,
    }
    # Without a both-phases run, the weight-learning-only distilled ours stands in.
    without_both = [r for r in runs if r["method"] != "ours_distill_both"]
    found = {(c.ours, c.baseline) for c in comparisons(quality_cells(without_both))}
    assert ("ours_distill", "pfec_distill") in found
    assert not any(ours == "ours" and base in DISTILLED_BASELINES for ours, base in found)


def test_gaps_seed_by_seed_say_when_ours_is_ahead_on_every_checkpoint() -> None:
    """Checkpoints differ more than methods: seed by seed, ours 1 point ahead on each of
    three checkpoints is a consistent lead although the seed spread (5 points) hides it."""
    runs = []
    for seed, base in enumerate([0.70, 0.75, 0.80]):
        for method, accuracy in (("ours", base + 0.01), ("pfec", base), ("tp_taylor", base)):
            runs.append({**_run(method, 0.5, accuracy), "seed": seed})
        runs[-1]["accuracy"] += 0.02 * (seed - 1)  # Taylor: behind, level, then ahead
    found = {c.baseline: c for c in comparisons(quality_cells(runs), runs)}
    pfec, taylor = found["pfec"], found["tp_taylor"]
    assert [round(g, 6) for g in pfec.seed_gaps] == [1.0, 1.0, 1.0]
    assert pfec.every_seed == "ahead" and abs(pfec.gap) < pfec.noise
    assert [round(g, 6) for g in taylor.seed_gaps] == [3.0, 1.0, -1.0]
    assert taylor.every_seed is None
    assert comparisons(quality_cells(runs))[0].seed_gaps == ()  # without the runs: no pairs


def test_the_headline_tells_losses_to_baselines_from_a_variant_of_ours_doing_better() -> None:
    runs = [
        _run("ours", 0.5, 0.70), _run("pfec", 0.5, 0.72), _run("ours_distill_both", 0.5, 0.78),
        _run("pfec_distill", 0.5, 0.75),
    ]  # fmt: skip
    said = quality_headline({"quality_x": {"runs": runs, "datasets": ["builtin:photos"]}})
    lose = next(line for line in said if line.startswith("Where we lose:"))
    assert "vs pfec by 2.00 points" in lose and "ours_distill_both" not in lose
    variant = next(line for line in said if line.startswith("Where a variant of ours"))
    assert "vs ours_distill_both by 8.00 points" in variant


def test_without_a_loss_to_a_baseline_the_headline_says_so() -> None:
    runs = [_run("ours", 0.5, 0.74), _run("pfec", 0.5, 0.72), _run("ours_greedy", 0.5, 0.78)]
    said = quality_headline({"quality_x": {"runs": runs, "datasets": ["builtin:photos"]}})
    assert "Ours is not behind any pruned baseline in any cell." in said
    assert any(line.startswith("Where a variant of ours does better") for line in said)
