"""What the service and a device say to each other: the manifest a device polls
(`GET /v1/deployments/{name}/manifest`) and the report it posts
(`POST /v1/devices/{id}/reports`).

The service validates both with pydantic (service/api/schemas/deployments.py, devices.py;
tests/contracts checks their fields against these), the edge client reads and writes them by
these names, and the edge client's test server speaks them.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict, get_args

# The forms a deployment's model is published in; "fp32" always, "int8" when the job asked.
Variant = Literal["fp32", "int8"]
VARIANTS: tuple[Variant, ...] = get_args(Variant)


class Preprocessing(TypedDict):
    """How a sample becomes the model's input, per channel c:
    x = (value · value_scale − mean[c]) / std[c], laid out as `layout`."""

    layout: Literal["NCHW"]
    mean: list[float]
    std: list[float]
    value_scale: float


class ManifestVariant(TypedDict):
    name: Variant
    sha256: str
    size: int
    url: str
    accuracy: float | None  # on the task's test split, measured with onnxruntime
    # int8 only: its speed over fp32's on the worker's CPU (batch 1, one thread), a hint;
    # the device measures its own. None for fp32 and for jobs that predate the measurement.
    speed_over_fp32: float | None


class Manifest(TypedDict):
    """`sha256`, `size` and `url` are the fp32 model's; `variants` lists every form
    published. `url`s may be relative to the server."""

    deployment: str
    version: int
    job_id: str
    sha256: str
    size: int
    url: str
    baseline_url: str | None
    baseline_sha256: str | None
    input_shape: list[int]
    classes: list[str]
    flops: int | None
    params: int | None
    variants: list[ManifestVariant]
    preprocessing: Preprocessing | None


class Latency(TypedDict):
    """Milliseconds per inference call; p50 <= p95 <= p99."""

    p50_ms: float
    p95_ms: float
    p99_ms: float


# "ok": a benchmark of the installed model; "install_failed": the install of a version
# stopped at `stage` (size or sha256 differ, onnxruntime cannot open it, or its test
# inference failed).
ReportStatus = Literal["ok", "install_failed"]
InstallStage = Literal["checksum", "load", "inference"]


class DeviceReport(TypedDict, total=False):
    """The fields the service checks; every one may be left out (or null) but `status`,
    which defaults to "ok"."""

    version: int | None
    sha256: str | None
    status: ReportStatus
    stage: InstallStage | None
    latency: Latency | None
    throughput_per_s: float | None
    peak_rss_mb: float | None
    threads: int | None
    baseline_latency: Latency | None
    speedup: float | None  # baseline p50 / model p50
    accuracy: float | None
    error: str | None
    # Which variant ran, and (edge-client --also-fp32) the fp32 pruned model's latency beside
    # an int8 one: what quantization bought on this device.
    variant: Variant | None
    fp32_latency: Latency | None
    speedup_vs_fp32: float | None


class BenchmarkContext(TypedDict, total=False):
    """What the edge client adds to a report about how it measured; the service stores these
    as sent (any further key too), without checking them."""

    job_id: str | None
    runs: int
    warmup: int
    batch: int
    onnxruntime_version: str
    cpu: dict[str, Any]


class SentDeviceReport(DeviceReport, BenchmarkContext, total=False):
    """A report as the edge client posts it."""
