"""From a job row to the engine's inputs."""

from __future__ import annotations

import math

import pytest

from edgeprune.contracts.json_values import json_safe
from infra.store.models import Dataset
from pruning.config import InvalidTarget
from worker.failures import one_line
from worker.job_inputs import build_config, dataset_suffix
from worker.summary import summarize


def test_build_config_takes_engine_fields_and_ignores_the_rest() -> None:
    config = build_config(
        {
            "target": {"metric": "params", "reduction": 0.3},
            "structure_epochs": 2,
            "finetune_epochs": 3,
            "batch_size": 16,
            "lr": 0.05,
            "seed": 7,
            "target_fit": "cost_aware",
            "device": "cuda:9",  # the worker chooses the device, never the client
            "unknown": 1,
        }
    )
    assert (config.target.metric, config.target.reduction) == ("params", 0.3)
    assert (config.structure_epochs, config.finetune_epochs, config.batch_size) == (2, 3, 16)
    assert (config.lr, config.seed, config.device) == (0.05, 7, "auto")
    assert config.target_fit == "cost_aware"


def test_build_config_rejects_bad_targets() -> None:
    with pytest.raises(InvalidTarget):
        build_config({})
    with pytest.raises(InvalidTarget):
        build_config({"target": {"metric": "latency", "reduction": 0.5}})
    with pytest.raises(ValueError):
        build_config({"target": {"metric": "flops", "reduction": 0.5}, "batch_size": 0})


@pytest.mark.parametrize(
    ("fmt", "filename", "suffix"),
    [("npz", "a.npz", ".npz"), ("zip", "x.zip", ".zip"), ("tar.gz", "t.tar.gz", ".tar.gz"),
     ("other", "imgs.TGZ", ".tgz")],
)  # fmt: skip
def test_dataset_keeps_its_suffix(fmt: str, filename: str, suffix: str) -> None:
    assert dataset_suffix(Dataset(format=fmt, filename=filename)) == suffix


def test_summary_and_json_safety() -> None:
    report = {
        "target": {"metric": "flops", "reduction": 0.5},
        "achieved": {"flops": 0.51, "params": 0.4, "channels": 0.2},
        "baseline": {"accuracy": 0.9, "flops": 100, "params": 10},
        "pruned": {"accuracy": math.nan, "flops": 49, "params": 6},
    }
    summary = summarize(report)
    assert summary["accuracy_before"] == 0.9 and summary["accuracy_after"] is None
    assert (summary["flops_before"], summary["flops_after"]) == (100, 49)
    assert json_safe({"a": [math.inf, 1.0], "b": (2,)}) == {"a": [None, 1.0], "b": [2]}
    assert one_line(ValueError("a\n  b")) == "a b" and one_line(KeyError()) == "KeyError"
