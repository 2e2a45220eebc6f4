"""What a job's row becomes for the engine: the frozen config from the accepted request, and
the checkpoint and data fetched under names the loaders recognise."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from infra.store.models import Dataset, Job, Model
from pruning.config import CompressConfig, InvalidTarget, Target
from pruning.data.archives import ArchiveLimits
from pruning.pipeline import CompressRequest
from worker.context import WorkerContext

DATASET_SUFFIXES = {"npz": ".npz", "zip": ".zip", "tar.gz": ".tar.gz", "tgz": ".tgz"}
# The engine picks the device; everything else a job may set is a CompressConfig field.
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(CompressConfig)} - {"target", "device"}


def build_config(raw: dict[str, Any]) -> CompressConfig:
    """The job's accepted request (`Job.config`) as the engine's frozen config."""
    target = raw.get("target")
    if not isinstance(target, dict):
        raise InvalidTarget("the job has no target {metric, reduction}")
    kwargs = {k: v for k, v in raw.items() if k in _CONFIG_FIELDS}
    return CompressConfig(
        target=Target(metric=target.get("metric"), reduction=target.get("reduction")),  # type: ignore[arg-type]
        **kwargs,
    )


def dataset_suffix(dataset: Dataset) -> str:
    # The loader recognises the data by its name: keep .npz / .zip / .tar.gz.
    if dataset.format in DATASET_SUFFIXES:
        return DATASET_SUFFIXES[dataset.format]
    name = dataset.filename.lower()
    for suffix in (".tar.gz", ".tgz", ".zip", ".npz"):
        if name.endswith(suffix):
            return suffix
    return Path(name).suffix


def compress_request(
    ctx: WorkerContext, job: Job, model: Model, dataset: Dataset, tmp: Path
) -> CompressRequest:
    """The engine's request for `job`: its config, and its model and dataset fetched from
    the artifact store into `tmp`."""
    config = build_config(job.config)
    storage = ctx.storage
    model_suffix = Path(model.filename).suffix or f".{model.format}"
    checkpoint = storage.get_to_path(model.sha256, tmp / f"model{model_suffix}")
    data = storage.get_to_path(dataset.sha256, tmp / f"dataset{dataset_suffix(dataset)}")
    if model.arch is None or model.input_shape is None:  # only ready models reach a job
        raise ValueError(f"model {model.id} has not been inspected (no arch or input shape)")
    shape = [int(v) for v in model.input_shape]
    return CompressRequest(
        arch=model.arch,
        data=str(data),
        checkpoint=checkpoint,
        config=config,
        num_classes=model.num_classes,
        input_size=(shape[1], shape[2]) if len(shape) == 3 else None,
        source_job=job.id,
        archive_limits=ArchiveLimits(
            members=ctx.settings.max_dataset_files,
            expanded_bytes=ctx.settings.max_dataset_bytes,
        ),
    )
