"""Inspection of uploaded checkpoints: ready with counts, or invalid with a one-line reason."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from edgeprune.contracts.limits import MAX_CHANNEL_MULTIPLE
from infra.store import uploads
from infra.store.models import Model
from tests.worker.tinyjob import write_inputs
from worker.context import WorkerContext
from worker.inspect_model import inspect_uploaded_model

_DEFAULT: Any = object()


def _add_model(
    ctx: WorkerContext,
    data: bytes,
    arch: str | None = "vgg11",
    shape: list[int] | None = _DEFAULT,
    num_classes: int | None = 10,
) -> str:
    sha, size = ctx.storage.put_bytes(data)
    with ctx.sessions.begin() as session:
        return uploads.add_model(
            session, name="m", arch=arch, num_classes=num_classes,
            input_shape=[1, 32, 32] if shape is _DEFAULT else shape,
            filename="m.pt", format="pt", sha256=sha, size=size,
        ).id  # fmt: skip


def _plain_state_dict(tmp_path: Path) -> bytes:
    from pruning.models.registry import ModelSpec, build_model

    path = tmp_path / "plain.pt"
    torch.save(build_model(ModelSpec("resnet20", in_channels=1, num_classes=7)).state_dict(), path)
    return path.read_bytes()


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
    # The reachable reductions per metric and channel multiple, for the submission's check.
    assert model.limits is not None and set(model.limits) == {"flops", "params", "channels"}
    assert all(len(v) == MAX_CHANNEL_MULTIPLE for v in model.limits.values())
    assert all(0.5 < v[0] < 1 and min(v) >= 0 for v in model.limits.values())
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


def test_fields_left_out_are_read_from_the_checkpoints_record(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    checkpoint, _ = write_inputs(tmp_path)  # vgg11, 1 channel, 10 classes, spec embedded
    model_id = _add_model(ctx, checkpoint.read_bytes(), arch=None, shape=None, num_classes=None)
    assert inspect_uploaded_model(ctx, model_id) == "ready"
    model = _model(ctx, model_id)
    assert (model.arch, model.num_classes, model.input_shape) == ("vgg11", 10, [1, 32, 32])
    assert model.params and model.flops


def test_a_given_shape_is_kept_and_a_given_arch_must_match_the_record(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    checkpoint, _ = write_inputs(tmp_path)
    kept = _add_model(ctx, checkpoint.read_bytes(), arch=None, shape=[1, 64, 64])
    assert inspect_uploaded_model(ctx, kept) == "ready"
    assert _model(ctx, kept).input_shape == [1, 64, 64]
    other = _add_model(ctx, checkpoint.read_bytes(), arch="resnet20", shape=None)
    assert inspect_uploaded_model(ctx, other) == "invalid"
    assert _model(ctx, other).error == "the checkpoint holds a vgg11, not a resnet20"


def test_a_plain_state_dict_needs_its_arch_and_the_rest_is_read_from_its_weights(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    data = _plain_state_dict(tmp_path)
    missing = _add_model(ctx, data, arch=None, shape=None, num_classes=None)
    assert inspect_uploaded_model(ctx, missing) == "invalid"
    model = _model(ctx, missing)
    assert model.error == (
        "this checkpoint does not record its architecture: upload it again with --arch"
    )
    assert model.arch is None and model.params is None
    named = _add_model(ctx, data, arch="resnet20", shape=None, num_classes=None)
    assert inspect_uploaded_model(ctx, named) == "ready"
    model = _model(ctx, named)
    # Classes and channels from the weights; 32x32, resnet20's usual input.
    assert (model.arch, model.num_classes, model.input_shape) == ("resnet20", 7, [1, 32, 32])


def test_a_shape_the_model_cannot_run_on_is_one_clear_line(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    checkpoint, _ = write_inputs(tmp_path)
    too_small = _add_model(ctx, checkpoint.read_bytes(), shape=[1, 8, 8])
    wrong_channels = _add_model(ctx, checkpoint.read_bytes(), shape=[3, 32, 32])
    for model_id in (too_small, wrong_channels):
        assert inspect_uploaded_model(ctx, model_id) == "invalid"
    error = _model(ctx, too_small).error
    assert error == (
        "vgg11 does not run on 1x8x8 inputs (C,H,W): too small for its downsampling, or not "
        "the size its classifier was built for; upload it again with --input-shape C,H,W of "
        "your data"
    )
    assert _model(ctx, wrong_channels).error == (
        "the checkpoint's vgg11 takes 1-channel inputs, not 3; upload it again with "
        "--input-shape C,H,W of your data"
    )


def test_an_installed_arch_has_no_usual_input_size_to_fall_back_on(
    ctx: WorkerContext, tmp_path: Path
) -> None:
    from pruning.models.registry import ModelSpec, build_model

    path = tmp_path / "se.pt"
    torch.save(
        build_model(ModelSpec("se_resnet", in_channels=1, num_classes=10)).state_dict(), path
    )
    unsized = _add_model(ctx, path.read_bytes(), arch="se_resnet", shape=None)
    sized = _add_model(ctx, path.read_bytes(), arch="se_resnet", shape=[1, 32, 32])
    assert inspect_uploaded_model(ctx, unsized) == "invalid"
    assert _model(ctx, unsized).error == (
        "this checkpoint does not record its input size and se_resnet has no usual one: "
        "upload it again with --input-shape C,H,W of your data"
    )
    assert inspect_uploaded_model(ctx, sized) == "ready"


def test_a_network_whose_limits_cannot_be_found_is_still_ready(
    ctx: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding the units is the engine's business at job time: an upload is not refused for
    it, it only goes without limits (the worker then checks the target itself)."""
    import pruning.pipeline

    def fail(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("no prunable units found")

    monkeypatch.setattr(pruning.pipeline, "reduction_limits", fail)
    checkpoint, _ = write_inputs(tmp_path)
    model_id = _add_model(ctx, checkpoint.read_bytes())
    assert inspect_uploaded_model(ctx, model_id) == "ready"
    model = _model(ctx, model_id)
    assert model.status == "ready" and model.params and model.limits is None
