"""The headline numbers of a run's report, in the shape of the contracts' JobSummary: what
`edgeprune compress --json` prints and what the worker stores with a succeeded job
(`summary` in `GET /v1/jobs/{id}`), one vocabulary for both."""

from __future__ import annotations

from typing import Any

from edgeprune.contracts.edge import Preprocessing
from edgeprune.contracts.report import Int8Headline, JobSummary, Report


def summarize(report: Report) -> JobSummary:
    """Target, achieved reductions, accuracy/FLOPs/params before and after, the
    preprocessing a device needs, and the INT8 variant's headline (None if not asked for).
    Values are the report's own: NaN stays NaN (the worker stores it, and the JSON printers
    print it, as null)."""
    baseline, pruned = report.get("baseline") or {}, report.get("pruned") or {}
    return {
        "target": report.get("target"),
        "achieved": report.get("achieved"),
        "accuracy_before": baseline.get("accuracy"),
        "accuracy_after": pruned.get("accuracy"),
        "flops_before": baseline.get("flops"),
        "flops_after": pruned.get("flops"),
        "params_before": baseline.get("params"),
        "params_after": pruned.get("params"),
        # What a device needs to feed the model (the manifest carries it).
        "preprocessing": _preprocessing(report.get("data")),
        "int8": _int8_headline(report.get("int8")),
    }


def _preprocessing(data: Any) -> Preprocessing | None:
    if not isinstance(data, dict) or "mean" not in data or "std" not in data:
        return None
    return {
        "layout": "NCHW",
        "mean": data["mean"],
        "std": data["std"],
        "value_scale": data.get("value_scale", 1 / 255),
    }


def _int8_headline(int8: Any) -> Int8Headline | None:
    if not isinstance(int8, dict):
        return None
    return {
        "published": int8.get("published"),
        "accuracy": int8.get("accuracy"),
        "fp32_accuracy": int8.get("fp32_accuracy"),
        "drop": int8.get("drop"),
        "reason": int8.get("reason"),
        "speed_over_fp32": (int8.get("speed") or {}).get("int8_over_fp32"),
    }
