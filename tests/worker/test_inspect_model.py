"""Inspection of uploaded checkpoints: ready with counts, or invalid with a one-line reason."""

from __future__ import annotations

from pathlib import Path

from infra.store import uploads
from infra.store.models import Model
from tests.worker.tinyjob import write_inputs
from worker.context import WorkerContext
from worker.inspect_model import inspect_uploaded_model


def _add_model(
    ctx: WorkerContext, data: bytes, arch: str = "vgg11", shape: list[int] | None = None
) -> str:
    sha, size = ctx.storage.put_bytes(data)
    with ctx.sessions.begin() as session:
        return uploads.add_model(
            session, name="m", arch=arch, num_classes=10, input_shape=shape or [1, 32, 32],
            filename="m.pt", format="pt", sha256=sha, size=size,
        ).id  # fmt: skip


def _model(ctx: WorkerContext, model_id: str) -> Model:
    with ctx.sessions() as session:
        model = session.get(Model, model_id)
        assert model is not None
        return model


def test_good_checkpoint_becomes_ready_with_counts(ctx: WorkerContext, tmp_path: Path) -> None:
    checkpoint, _ = write_inputs(tmp_path)
    model_id = _add_model(ctx, checkpoint.read_bytes())
    assert inspect_uploaded_model(ctx, model_id) == "ready"
    model = _model(ctx, model_id)
    assert model.status == "ready" and model.error is None
    assert model.params and model.params > 1000 and model.flops and model.flops > model.params
    # A duplicate delivery changes nothing.
    assert inspect_uploaded_model(ctx, model_id) == "ready"


def test_wrong_architecture_and_garbage_are_invalid(ctx: WorkerContext, tmp_path: Path) -> None:
    checkpoint, _ = write_inputs(tmp_path)
    wrong = _add_model(ctx, checkpoint.read_bytes(), arch="resnet20")
    garbage = _add_model(ctx, b"definitely not a checkpoint")
    for model_id in (wrong, garbage):
        assert inspect_uploaded_model(ctx, model_id) == "invalid"
        model = _model(ctx, model_id)
        assert model.status == "invalid" and model.error and "\n" not in model.error
        assert model.params is None
    assert inspect_uploaded_model(ctx, "mdl_missing") == "missing"
