"""A real, tiny compression job: vgg11 at width 0.125 on scikit-learn's digits (8×8 → 32×32).

Builds the checkpoint and the .npz with the engine's own code, stores them in the artifact
store and records the model, dataset and job with the store's functions, as the API and the
inspect worker would have (the job is queued; nothing is sent to a broker).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.datasets import load_digits
from sqlalchemy.orm import Session, sessionmaker

from infra.storage import ArtifactStore
from infra.store import jobs, uploads
from pruning.checkpoints import save_checkpoint
from pruning.models.registry import ModelSpec, build_model
from pruning.pipeline import inspect_model


def write_inputs(folder: Path, samples: int = 600, arch: str = "vgg11") -> tuple[Path, Path]:
    """The digits task and a checkpoint: the zoo's vgg11 with its structure embedded, or a
    plain state dict of an architecture installed under the edgeprune.models entry points."""
    folder.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = (digits.images[:samples] / 16.0).astype(np.float32)[:, None]
    y = digits.target[:samples].astype(np.int64)
    data = folder / "digits.npz"
    np.savez(data, x=x, y=y)
    checkpoint = folder / f"{arch}-tiny.pt"
    if arch == "vgg11":
        spec = ModelSpec("vgg11", in_channels=1, num_classes=10, width_mult=0.125)
        save_checkpoint(checkpoint, build_model(spec), spec)
    else:
        model = build_model(ModelSpec(arch, in_channels=1, num_classes=10))
        torch.save(model.state_dict(), checkpoint)
    return checkpoint, data


def job_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "target": {"metric": "flops", "reduction": 0.5},
        "structure_epochs": 1,
        "finetune_epochs": 1,
        "batch_size": 32,
        "lr": 0.01,
        "seed": 0,
        "calibration_batches": 3,
    }
    config.update(overrides)
    return config


def add_tiny_job(
    sessions: sessionmaker[Session],
    storage: ArtifactStore,
    folder: Path,
    *,
    deployment: str | None = None,
    data_bytes: bytes | None = None,
    arch: str = "vgg11",
    **config: Any,
) -> str:
    checkpoint, data = write_inputs(folder, arch=arch)
    model_sha, model_size = storage.put_file(checkpoint)
    if data_bytes is not None:
        data_sha, data_size = storage.put_bytes(data_bytes)
    else:
        data_sha, data_size = storage.put_file(data)
    # What the inspect worker would find: the checkpoint loads, and its size.
    counts = inspect_model(checkpoint, arch=arch, num_classes=10, input_shape=(1, 32, 32))
    with sessions.begin() as session:
        model = uploads.add_model(
            session, name="tiny", arch=arch, num_classes=10, input_shape=[1, 32, 32],
            filename=checkpoint.name, format="pt", sha256=model_sha, size=model_size,
        )  # fmt: skip
        uploads.mark_model_ready(session, model.id, params=counts.params, flops=counts.flops)
        dataset = uploads.add_dataset(
            session, name="digits", filename="digits.npz", format="npz", sha256=data_sha,
            size=data_size, samples=600, classes=[str(i) for i in range(10)], input_shape=[1, 8, 8],
        )  # fmt: skip
        job = jobs.create_job(
            session,
            model_id=model.id,
            dataset_id=dataset.id,
            config=job_config(**config),
            deployment=deployment,
        )
        return job.id
