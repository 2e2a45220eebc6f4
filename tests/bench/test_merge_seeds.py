"""bench.merge_seeds: two quality files that differ only in their seeds become one."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bench.merge_seeds import merge

AVX512 = ["avx2", "avx512f", "avx512bw", "avx512_vnni"]


def payload(
    seeds: list[int],
    *,
    cpu: str = "AMD EPYC",
    features: list[str] | None = AVX512,
    epochs: int = 6,
) -> dict[str, Any]:
    environment: dict[str, Any] = {"cpu": cpu}
    if features is not None:
        environment["cpu_features"] = features
    return {
        "environment": environment,
        "quick": True,
        "datasets": ["builtin:photos"],
        "settings": {"seeds": seeds, "structure_epochs": epochs, "targets": [0.7]},
        "seconds": 10.0,
        "pretrained": [{"seed": s, "accuracy": 0.8} for s in seeds],
        "runs": [{"seed": s, "method": "ours", "accuracy": 0.7 + s / 100} for s in seeds],
        "notes": [f"seeds {seeds}"],
    }


def test_the_union_of_seeds_runs_and_checkpoints() -> None:
    merged = merge([payload([0, 1, 2]), payload([3, 4])])
    assert merged["settings"]["seeds"] == [0, 1, 2, 3, 4]
    assert [r["seed"] for r in merged["runs"]] == [0, 1, 2, 3, 4]
    assert len(merged["pretrained"]) == 5 and merged["seconds"] == 20.0
    assert merged["settings"]["structure_epochs"] == 6 and len(merged["environments"]) == 2


def test_a_run_stopped_early_counts_only_the_seeds_it_measured() -> None:
    stopped = {**payload([3]), "settings": {**payload([3])["settings"], "seeds": [3, 4, 5]}}
    stopped["complete"] = False
    merged = merge([payload([0, 1, 2]), stopped])
    assert merged["settings"]["seeds"] == [0, 1, 2, 3]
    # A complete file is taken at its word: its seeds are those it was asked for.
    assert merge([payload([0]), {**stopped, "complete": True}])["settings"]["seeds"] == [0, 3, 4, 5]


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (payload([3], epochs=2), "settings ['structure_epochs']"),
        (payload([3], cpu="Intel Xeon"), "different kinds of CPU"),
        # The same model name, one CPU with AVX-512 and one without: other checkpoints.
        (payload([3], features=["avx2"]), "CPUs with different features"),
        (payload([3], features=None), "does not record its CPU's features"),
        (payload([2, 3]), "share seeds"),
    ],
)
def test_files_that_differ_in_more_than_seeds_are_refused(
    second: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        merge([payload([0, 1, 2]), second])
