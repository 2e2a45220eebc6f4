"""Inspect an uploaded checkpoint: does it load into its architecture, and how big is it?

The API stores the upload with status `pending` and waits (briefly) for this task to set
`ready` with params and FLOPs, or `invalid` with a one-line reason. Both move only a
pending model (infra/store/uploads.py): a duplicate delivery finds nothing to do.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from infra.store import uploads
from infra.store.models import Model
from pruning.checkpoints import CheckpointError
from pruning.pipeline import inspect_model
from worker.context import WorkerContext
from worker.failures import one_line

log = logging.getLogger(__name__)


def _invalid(ctx: WorkerContext, model_id: str, error: str) -> str:
    with ctx.sessions.begin() as session:
        uploads.mark_model_invalid(session, model_id, error)
    return uploads.INVALID


def inspect_uploaded_model(ctx: WorkerContext, model_id: str) -> str:
    with ctx.sessions() as session:
        model = session.get(Model, model_id)
    if model is None:
        log.warning("model %s does not exist", model_id)
        return "missing"
    if model.status != uploads.PENDING:
        return model.status
    with tempfile.TemporaryDirectory(prefix=f"edgeprune-{model_id}-") as tmp:
        suffix = Path(model.filename).suffix or f".{model.format}"
        path = ctx.storage.get_to_path(model.sha256, Path(tmp) / f"model{suffix}")
        shape = tuple(int(v) for v in model.input_shape)
        try:
            if len(shape) != 3:
                raise CheckpointError(f"input_shape must be [C, H, W], got {list(shape)}")
            counts = inspect_model(
                path,
                arch=model.arch,
                num_classes=model.num_classes,
                input_shape=shape,
            )
        except (CheckpointError, ValueError) as exc:
            return _invalid(ctx, model_id, one_line(exc))
        except Exception as exc:
            log.exception("inspecting model %s failed", model_id)
            return _invalid(ctx, model_id, f"{type(exc).__name__}: {one_line(exc)}")
    with ctx.sessions.begin() as session:
        uploads.mark_model_ready(session, model_id, params=counts["params"], flops=counts["flops"])
    return uploads.READY
