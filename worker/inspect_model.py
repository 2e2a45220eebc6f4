"""Inspect an uploaded checkpoint: does it load into its architecture, and how big is it?

The API stores the upload with status `pending` and waits (briefly) for this task to set
`ready` with params and FLOPs, or `invalid` with a one-line reason. Both move only a
pending model (infra/store/uploads.py): a duplicate delivery finds nothing to do.

An upload may leave out arch, num_classes and input_shape: they are then read from the
checkpoint's structure record (EdgePrune's own checkpoints carry one) or its weights, the
input's height and width default to the architecture's usual input, and `ready` records
what was found. A reason names the upload option that would have helped.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from infra.store import uploads
from infra.store.models import Model
from pruning.checkpoints import CheckpointError
from pruning.pipeline import InputShapeMismatch, MissingModelField, inspect_model
from worker.context import WorkerContext
from worker.failures import one_line

log = logging.getLogger(__name__)

_SHAPE_HINT = "upload it again with --input-shape C,H,W of your data"
_MISSING = {
    "arch": "this checkpoint does not record its architecture: upload it again with --arch",
    "input_shape": "this checkpoint does not record its input size and {arch} has no usual "
    f"one: {_SHAPE_HINT}",
}
_SOURCES = {
    "given": "as uploaded",
    "checkpoint": "recorded in the checkpoint",
    "usual": "the architecture's usual input",
}


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
        given = tuple(int(v) for v in model.input_shape) if model.input_shape else None
        try:
            if given is not None and len(given) != 3:
                raise CheckpointError(f"input_shape must be [C, H, W], got {list(given)}")
            found = inspect_model(
                path,
                arch=model.arch,
                num_classes=model.num_classes,
                input_shape=(given[0], given[1], given[2]) if given is not None else None,
            )
        except MissingModelField as exc:
            reason = _MISSING[exc.field].format(arch=model.arch or "its architecture")
            return _invalid(ctx, model_id, reason)
        except InputShapeMismatch as exc:
            return _invalid(ctx, model_id, f"{one_line(exc)}; {_SHAPE_HINT}")
        except (CheckpointError, ValueError) as exc:
            return _invalid(ctx, model_id, one_line(exc))
        except Exception as exc:
            log.exception("inspecting model %s failed", model_id)
            return _invalid(ctx, model_id, f"{type(exc).__name__}: {one_line(exc)}")
    log.info(
        "model %s: %s, %d classes, input %s (%s)%s; %d params, %d MACs",
        model_id,
        found.arch,
        found.num_classes,
        "x".join(str(v) for v in found.input_shape),
        _SOURCES[found.shape_source],
        ", structure read from the checkpoint" if found.spec_in_file else "",
        found.params,
        found.flops,
    )
    with ctx.sessions.begin() as session:
        uploads.mark_model_ready(
            session,
            model_id,
            params=found.params,
            flops=found.flops,
            arch=found.arch,
            num_classes=found.num_classes,
            input_shape=found.input_shape,
            limits=found.limits,
        )
    return uploads.READY
