"""The job summary as the worker stores it on the job row when the job succeeds: the
report's headline numbers (`pruning.summary`, the same object `edgeprune compress --json`
prints) with NaN and infinities as null, which PostgreSQL's JSON refuses.

Its shape is edgeprune.contracts.report.JobSummary; the API lists it with the job, the
manifest takes the pruned model's FLOPs, params, accuracy and preprocessing from it, and
the dashboard and `edgeprune jobs watch` show it.
"""

from __future__ import annotations

from typing import cast

from edgeprune.contracts.json_values import json_safe
from edgeprune.contracts.report import JobSummary, Report
from pruning.summary import summarize as headline


def summarize(report: Report) -> JobSummary:
    """The headline numbers of a report; NaN and infinities become null."""
    return cast(JobSummary, json_safe(headline(report)))
