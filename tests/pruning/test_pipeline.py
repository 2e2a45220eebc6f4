"""run_compression from files: transfer to a task with other classes, inspect_model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from edgeprune.contracts.architectures import NATURAL_INPUT_HW, ZOO
from pruning.checkpoints import CheckpointError, save_checkpoint
from pruning.config import CompressConfig, Target
from pruning.models.registry import ModelSpec, build_model
from pruning.network.metrics import count_model
from pruning.pipeline import CompressRequest, inspect_model, run_compression
from pruning.report import ALLOCATION_ROOM


def _three_digit_task(path: Path) -> None:
    digits = load_digits()
    keep = digits.target < 3
    x = (digits.images[keep] * 16).clip(0, 255).astype(np.uint8)
    x = np.kron(x, np.ones((1, 4, 4), dtype=np.uint8))  # 8×8 → 32×32
    np.savez(path, x=x, y=digits.target[keep])


def test_transfer_to_a_task_with_other_classes_reinitialises_the_head(tmp_path: Path) -> None:
    spec = ModelSpec(arch="resnet20", in_channels=1, num_classes=10, width_mult=0.25)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ck.pt", build_model(spec), spec)
    _three_digit_task(tmp_path / "task.npz")
    request = CompressRequest(
        arch="resnet20",
        data=str(tmp_path / "task.npz"),
        checkpoint=tmp_path / "ck.pt",
        num_classes=10,
        config=CompressConfig(
            target=Target("params", 0.5), structure_epochs=1, finetune_epochs=1, batch_size=64
        ),
    )
    result = run_compression(request, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["config"]["head_reinitialised"] is True
    assert report["structure"]["num_classes"] == 3
    assert report["config"]["classes"] == ["0", "1", "2"]
    assert abs(result.report["achieved"]["params"] - 0.5) <= 0.01
    # uint8 pixels in an .npz are images: shift-and-mirror by default, and the report says so.
    assert report["data"]["kind"] == "images" and report["runtime"]["augment"] == "shift-and-mirror"
    assert report["data"]["train_samples"] + report["data"]["test_samples"] == len(
        np.load(tmp_path / "task.npz")["y"]
    )


def test_a_target_at_the_floors_says_the_allocation_had_no_room(tmp_path: Path) -> None:
    config = CompressConfig(
        target=Target("channels", 0.85), structure_epochs=1, finetune_epochs=1, batch_size=64,
        calibration_batches=2, augment=False, device="cpu",
    )  # fmt: skip
    request = CompressRequest(
        arch="resnet20", data="builtin:digits", width_mult=0.25, config=config
    )
    report = run_compression(request, tmp_path / "out").report
    before = [u["channels_before"] for u in report["units"]]
    floors = [math.ceil(config.min_fraction * c) for c in before]  # min_channels 1 is below
    reachable = 1 - sum(floors) / sum(before)
    assert report["target"]["reachable"] == pytest.approx(reachable)
    assert 0 <= reachable - 0.85 < ALLOCATION_ROOM
    notes = [n for n in report["notes"] if "largest reduction the per-unit floors allow" in n]
    assert len(notes) == 1 and f"({reachable:.1%}, every unit at its floor)" in notes[0]


def test_distillation_refuses_a_checkpoint_whose_head_was_made_afresh(tmp_path: Path) -> None:
    """The teacher is the checkpoint: with a head re-initialised for other classes its
    outputs say nothing about the task, so the run stops before training."""
    spec = ModelSpec(arch="vgg11", in_channels=1, num_classes=10, width_mult=0.25)
    save_checkpoint(tmp_path / "ck.pt", build_model(spec), spec)
    _three_digit_task(tmp_path / "task.npz")
    request = CompressRequest(
        arch="vgg11",
        data=str(tmp_path / "task.npz"),
        checkpoint=tmp_path / "ck.pt",
        config=CompressConfig(target=Target("flops", 0.5), distill=0.5),
    )
    with pytest.raises(CheckpointError, match="head was re-initialised"):
        run_compression(request, tmp_path / "out")
    assert not (tmp_path / "out" / "report.json").exists()


def test_distillation_without_a_checkpoint_is_refused_before_the_data_is_read(
    tmp_path: Path,
) -> None:
    request = CompressRequest(
        arch="vgg11",
        data=str(tmp_path / "not-read.npz"),  # absent: reading it would be a DataError
        config=CompressConfig(target=Target("flops", 0.5), distill=0.5),
    )
    with pytest.raises(CheckpointError, match="distill needs a checkpoint"):
        run_compression(request, tmp_path / "out")


def test_inspect_model_counts_and_refuses(tmp_path: Path) -> None:
    spec = ModelSpec(arch="vgg11", in_channels=3, num_classes=10, width_mult=0.25)
    model = build_model(spec)
    save_checkpoint(tmp_path / "ck.safetensors", model, spec)
    counted = inspect_model(
        tmp_path / "ck.safetensors", arch="vgg11", num_classes=10, input_shape=(3, 32, 32)
    )
    assert counted.params == sum(p.numel() for p in model.parameters())
    assert counted.flops > 0
    with pytest.raises(CheckpointError):
        inspect_model(
            tmp_path / "ck.safetensors", arch="resnet20", num_classes=10, input_shape=(3, 32, 32)
        )


@pytest.mark.parametrize("arch", ZOO)
def test_every_zoo_net_runs_on_its_usual_input(arch: str) -> None:
    """NATURAL_INPUT_HW is what an upload without --input-shape is inspected at."""
    hw = NATURAL_INPUT_HW[arch]
    model = build_model(ModelSpec(arch, in_channels=3, num_classes=10, width_mult=0.25))
    assert count_model(model, (3, *hw)).flops > 0
    imagenet_style = ("resnet18", "resnet34", "resnet50", "mobilenet_v2_imagenet")
    assert hw == ((224, 224) if arch in imagenet_style else (32, 32))
