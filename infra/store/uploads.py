"""Uploaded checkpoints (`Model` rows) and datasets: their one write side.

A checkpoint is recorded `pending` by the API, which cannot load it (no torch there), and an
inspect worker moves it to `ready` (with params and FLOPs) or `invalid` (with a one-line
reason). The reconciler marks an upload that no worker inspected `invalid` too. Each move
starts from `pending` only, so a duplicate inspection, or an inspection that finishes after
the reconciler gave up, changes nothing. Datasets are inspected by the API itself and
recorded once, complete. Functions flush; the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from infra.store.models import Dataset, Model, utcnow

PENDING = "pending"
READY = "ready"
INVALID = "invalid"
MAX_ERROR_CHARS = 2000


def add_model(
    session: Session,
    *,
    name: str,
    arch: str | None,
    num_classes: int | None,
    input_shape: Sequence[int] | None,
    filename: str,
    format: str,
    sha256: str,
    size: int,
    created_at: datetime | None = None,
) -> Model:
    """A stored checkpoint (`format` "pt" or "safetensors"), `pending` inspection. Queue the
    inspection (`JobQueue.enqueue_inspect`) after the commit. `created_at` defaults to now.
    `arch`, `num_classes` and `input_shape` may be None: the inspection fills them from the
    checkpoint (`mark_model_ready`)."""
    model = Model(
        name=name,
        arch=arch,
        num_classes=num_classes,
        input_shape=list(input_shape) if input_shape is not None else None,
        filename=filename,
        format=format,
        sha256=sha256,
        size=size,
        status=PENDING,
        created_at=created_at or utcnow(),
    )
    session.add(model)
    session.flush()
    return model


def mark_model_ready(
    session: Session,
    model_id: str,
    *,
    params: int,
    flops: int,
    arch: str | None = None,
    num_classes: int | None = None,
    input_shape: Sequence[int] | None = None,
    limits: dict[str, list[float]] | None = None,
) -> bool:
    """The checkpoint loads into its architecture; False when it was no longer pending.
    `arch`, `num_classes` and `input_shape`, when given, are what the inspection found (the
    upload may have left them out); a ready model always has all three. `limits` are its
    reachable reductions (`edgeprune.contracts.limits.reachable_limit` reads them)."""
    found: dict[str, Any] = {"arch": arch, "num_classes": num_classes, "limits": limits}
    if input_shape is not None:
        found["input_shape"] = [int(v) for v in input_shape]
    values = {k: v for k, v in found.items() if v is not None}
    return _set_status(
        session, model_id, status=READY, params=params, flops=flops, error=None, **values
    )


def mark_model_invalid(session: Session, model_id: str, error: str) -> bool:
    """The checkpoint cannot be used; `error` is shown to clients (made one line here).
    False when it was no longer pending."""
    message = " ".join(error.split())[:MAX_ERROR_CHARS] or "invalid checkpoint"
    return _set_status(session, model_id, status=INVALID, error=message)


def _set_status(session: Session, model_id: str, **values: Any) -> bool:
    result = session.execute(
        update(Model)
        .where(Model.id == model_id, Model.status == PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def drop_pending_model(session: Session, model_id: str) -> bool:
    """Forget an upload whose inspection could not be queued (nothing would ever inspect it;
    the client uploads again). Only a pending model, which no job can reference yet."""
    result = session.execute(
        delete(Model)
        .where(Model.id == model_id, Model.status == PENDING)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_dataset(
    session: Session,
    *,
    name: str,
    filename: str,
    format: str,
    sha256: str,
    size: int,
    samples: int,
    classes: Sequence[str],
    input_shape: Sequence[int],
) -> Dataset:
    """A stored, inspected dataset (`format` "npz", "zip" or "tar.gz")."""
    dataset = Dataset(
        name=name,
        filename=filename,
        format=format,
        sha256=sha256,
        size=size,
        samples=samples,
        classes=list(classes),
        input_shape=list(input_shape),
    )
    session.add(dataset)
    session.flush()
    return dataset
