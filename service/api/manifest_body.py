"""The manifest a device receives, rendered once per version: its strong ETag and JSON bytes.

Shared by the manifest route and the poll fast path (service/api/poll/), so both answer
byte for byte the same document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from edgeprune.contracts.report import JobSummary
from service.api import crud
from service.api.schemas.deployments import Manifest, ManifestVariant, Preprocessing


@dataclass(frozen=True, slots=True)
class RenderedManifest:
    etag: str  # '"<version>-<sha256[:16]>"', quotes included
    body: bytes
    version: int


def etag_of(row: crud.ManifestRow) -> str:
    return f'"{row.version}-{row.model_sha256[:16]}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (or is `*`)."""
    if not if_none_match:
        return False
    candidates = {t.strip() for t in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def render(row: crud.ManifestRow, base: str) -> RenderedManifest:
    """The manifest of `row`, artifact URLs under `base` (no trailing slash)."""
    # What the worker stored on success (see worker.run_job.summarize); {} before that.
    summary = cast(JobSummary, row.summary or {})
    body = Manifest(
        deployment=row.deployment,
        version=row.version,
        job_id=row.job_id,
        sha256=row.model_sha256,
        size=row.model_size,
        url=f"{base}/v1/artifacts/{row.model_sha256}",
        baseline_url=f"{base}/v1/artifacts/{row.baseline_sha256}" if row.baseline_sha256 else None,
        baseline_sha256=row.baseline_sha256,
        input_shape=row.input_shape,
        classes=row.classes,
        flops=_count(summary.get("flops_after")),
        params=_count(summary.get("params_after")),
        variants=_variants(row, summary, base),
        preprocessing=_preprocessing(summary),
    )
    # The same bytes Starlette's JSONResponse would write.
    data = json.dumps(
        body.model_dump(mode="json"), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")
    return RenderedManifest(etag_of(row), data, row.version)


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _variants(row: crud.ManifestRow, summary: JobSummary, base: str) -> list[ManifestVariant]:
    int8 = summary.get("int8")
    variants = [
        ManifestVariant(
            name="fp32",
            sha256=row.model_sha256,
            size=row.model_size,
            url=f"{base}/v1/artifacts/{row.model_sha256}",
            accuracy=_number(summary.get("accuracy_after")),
        )
    ]
    if row.int8_sha256 is not None and row.int8_size is not None:
        variants.append(
            ManifestVariant(
                name="int8",
                sha256=row.int8_sha256,
                size=row.int8_size,
                url=f"{base}/v1/artifacts/{row.int8_sha256}",
                accuracy=_number(int8.get("accuracy") if int8 else None),
                speed_over_fp32=_number(int8.get("speed_over_fp32") if int8 else None),
            )
        )
    return variants


def _preprocessing(summary: JobSummary) -> Preprocessing | None:
    found = summary.get("preprocessing")
    if not isinstance(found, dict):
        return None  # a job published before the worker recorded it
    try:
        return Preprocessing.model_validate(found)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
