"""bench.pooled_gaps: seed-paired gaps from several quality files, pooled into one sample."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bench.pooled_gaps import markdown, pooled_gaps


def run(seed: int, method: str, accuracy: float, target: float | None = 0.7) -> dict[str, Any]:
    return {
        "arch": "resnet20", "width_mult": 0.5, "seed": seed, "method": method,
        "target_flops_reduction": target, "accuracy": accuracy,
    }  # fmt: skip


def payload(*runs: dict[str, Any]) -> dict[str, Any]:
    return {"runs": list(runs)}


def test_gaps_pair_each_seed_and_pool_every_file() -> None:
    first = payload(
        run(0, "ours", 0.80), run(0, "pfec", 0.78), run(0, "unpruned", 0.81, None),
        run(1, "ours", 0.70), run(1, "pfec", 0.71), run(1, "unpruned", 0.72, None),
    )  # fmt: skip
    # The same seed number in another file is another checkpoint: a pair of its own.
    second = payload(run(0, "ours", 0.75), run(0, "pfec", 0.72), run(2, "ours", 0.9))
    rows = pooled_gaps([first, second], arch="resnet20", ours="ours", versus=["pfec", "unpruned"])
    by_versus = {row.versus: row for row in rows}
    assert by_versus["pfec"].gaps == pytest.approx((2.0, -1.0, 3.0))
    assert by_versus["pfec"].files == 2
    assert by_versus["pfec"].mean == pytest.approx(4.0 / 3)
    assert by_versus["pfec"].standard_error == pytest.approx(math.sqrt(13.0) / 3)
    assert (by_versus["pfec"].ahead, by_versus["pfec"].behind) == (2, 1)
    # The unpruned network has no target: it is compared with ours at each target.
    assert by_versus["unpruned"].gaps == pytest.approx((-1.0, -2.0))
    assert by_versus["unpruned"].files == 1
    lines = markdown(rows, "ours")
    assert "| 70% | pfec | 3 (2) | +1.33 | 1.20 | 2 / 1 |" in lines


def test_targets_stay_apart_and_other_networks_are_left_out() -> None:
    data = payload(
        run(0, "ours", 0.8), run(0, "pfec", 0.7), run(0, "ours", 0.6, 0.85),
        run(0, "pfec", 0.65, 0.85), {**run(0, "pfec", 0.1), "arch": "vgg16"},
    )  # fmt: skip
    rows = pooled_gaps([data], arch="resnet20", ours="ours", versus=["pfec"])
    assert [(row.target, row.gaps) for row in rows] == [
        (0.7, pytest.approx((10.0,))),
        (0.85, pytest.approx((-5.0,))),
    ]
    assert math.isnan(rows[0].standard_error)  # one pair: no spread to speak of


def test_two_widths_of_one_network_need_a_width() -> None:
    data = payload(run(0, "ours", 0.8), {**run(0, "ours", 0.7), "width_mult": 1.0})
    with pytest.raises(ValueError, match="--width"):
        pooled_gaps([data], arch="resnet20", ours="ours", versus=["pfec"])
    assert pooled_gaps([data], arch="resnet20", ours="ours", versus=["pfec"], width=1.0) == []
