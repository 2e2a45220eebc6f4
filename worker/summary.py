"""The job summary: a report's headline numbers, stored on the job row when it succeeds.

Its shape is edgeprune.contracts.report.JobSummary; the API lists it with the job, the
manifest takes the pruned model's FLOPs, params, accuracy and preprocessing from it, and
the dashboard and `edgeprune jobs watch` show it.
"""

from __future__ import annotations

from typing import Any, cast

from edgeprune.contracts.edge import Preprocessing
from edgeprune.contracts.report import Int8Headline, JobSummary, Report
from worker.hooks import json_safe


def summarize(report: Report) -> JobSummary:
    """The headline numbers of a report; NaN and infinities become null."""
    baseline, pruned = report.get("baseline") or {}, report.get("pruned") or {}
    summary: JobSummary = {
        "target": report.get("target"),
        "achieved": report.get("achieved"),
        "accuracy_before": baseline.get("accuracy"),
        "accuracy_after": pruned.get("accuracy"),
        "flops_before": baseline.get("flops"),
        "flops_after": pruned.get("flops"),
        "params_before": baseline.get("params"),
        "params_after": pruned.get("params"),
        "preprocessing": _preprocessing(report.get("data")),
        "int8": _int8_headline(report.get("int8")),
    }
    return cast(JobSummary, json_safe(summary))


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
    }
