"""The manifest a device receives, rendered once per version: its strong ETag and JSON bytes.

Shared by the manifest route and the poll fast path (service/api/poll/), so both answer
byte for byte the same document.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

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
        flops=_headline(row.summary, "flops"),
        params=_headline(row.summary, "params"),
        variants=_variants(row, base),
        preprocessing=_preprocessing(row.summary),
    )
    # The same bytes Starlette's JSONResponse would write.
    data = json.dumps(
        body.model_dump(mode="json"), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode("utf-8")
    return RenderedManifest(etag_of(row), data, row.version)


def _headline(summary: dict[str, Any] | None, key: str) -> int | None:
    """FLOPs/params of the pruned model from the job summary the worker wrote on success
    (`flops_after`/`params_after`, see worker.run_job.summarize)."""
    value = (summary or {}).get(f"{key}_after")
    return int(value) if isinstance(value, int | float) else None


def _variants(row: crud.ManifestRow, base: str) -> list[ManifestVariant]:
    summary = row.summary or {}
    int8 = summary.get("int8") or {}
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
                accuracy=_number(int8.get("accuracy")),
            )
        )
    return variants


def _preprocessing(summary: dict[str, Any] | None) -> Preprocessing | None:
    found = (summary or {}).get("preprocessing")
    if not isinstance(found, dict):
        return None  # a job published before the worker recorded it
    try:
        return Preprocessing.model_validate(found)
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None
