"""The top level of a job's report (report.json, ALGORITHM.md 'The report') and the summary
of it that the worker stores on the job row (`summary` in `GET /v1/jobs/{id}`).

Only the top-level keys are fixed here; what lies below them (a unit's fields, an epoch's
metrics) belongs to the engine and is described in ALGORITHM.md.
"""

# No `from __future__ import annotations` here: on Python 3.11 a TypedDict only sees
# NotRequired[...] in an evaluated annotation, not in a string.
from typing import Any, NotRequired, TypedDict

from edgeprune.contracts.edge import Preprocessing
from edgeprune.contracts.limits import Metric


class TargetSpec(TypedDict):
    metric: Metric
    reduction: float
    # The largest reduction the per-unit floors allow (reports since the key was added).
    reachable: NotRequired[float]


class Achieved(TypedDict):
    """The fraction of each measure removed, counted on the networks themselves."""

    flops: float
    params: float
    channels: float


class Report(TypedDict):
    target: TargetSpec
    achieved: Achieved
    baseline: dict[str, float]  # accuracy, loss, flops, params of the unpruned model
    pruned: dict[str, float]  # the same of the pruned model
    units: list[dict[str, Any]]  # per prunable unit: channels before and after
    kept_convs: list[dict[str, str]]  # convs whose outputs were not pruned, and why
    history: list[dict[str, Any]]  # per epoch of both training phases
    timings: dict[str, float]  # seconds per phase
    checks: dict[str, float]  # numerical parity checks of removal and export
    config: dict[str, Any]  # the run's configuration, data source and versions
    notes: list[str]
    # Added by the pipeline once the model is exported.
    structure: NotRequired[dict[str, Any]]
    runtime: NotRequired[dict[str, Any]]
    data: NotRequired[dict[str, Any]]  # per-channel mean/std, value_scale, classes, sizes
    int8: NotRequired[dict[str, Any]]  # only for jobs that asked for int8


class Int8Headline(TypedDict):
    published: bool | None
    accuracy: float | None
    fp32_accuracy: float | None
    drop: float | None
    reason: str | None  # why it was not published
    # int8 latency over fp32's on the worker's CPU (batch 1, one thread): a hint, since a
    # device's CPU may differ; devices report their own (fleet view).
    speed_over_fp32: NotRequired[float | None]


class JobSummary(TypedDict, total=False):
    """The report's headline numbers, stored with a succeeded job for listings, the manifest
    and the dashboard. The worker writes every key; readers use .get(), since the rows of
    jobs that older versions ran lack the keys added since (`preprocessing`, `int8`)."""

    target: TargetSpec | None
    achieved: Achieved | None
    accuracy_before: float | None
    accuracy_after: float | None
    # Counts (whole numbers) of the unpruned and the pruned model.
    flops_before: float | None
    flops_after: float | None
    params_before: float | None
    params_after: float | None
    # What a device needs to feed the model (the manifest carries it).
    preprocessing: Preprocessing | None
    int8: Int8Headline | None
