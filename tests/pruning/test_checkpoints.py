"""Checkpoints: both formats round-trip, code never runs, mismatches are named."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from pruning.checkpoints import (
    CheckpointError,
    CheckpointMismatch,
    load_into,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from pruning.models import ModelSpec, build_model
from pruning.network.units import PrunableModel, unit_widths


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".safetensors"])
def test_round_trip_keeps_weights_and_pruned_structure(tmp_path: Path, suffix: str) -> None:
    spec = ModelSpec(
        "resnet20", in_channels=1, num_classes=5, width_mult=0.25, widths=(3, 2, 4) * 3
    )
    model = build_model(spec)
    path = tmp_path / f"model{suffix}"
    save_checkpoint(path, model, spec)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind
    state, stored = read_checkpoint(path)
    assert stored == spec
    loaded, loaded_spec, report = load_model(path)
    assert loaded_spec == spec
    assert not report.head_reinitialised and report.loaded_keys == len(state)
    assert _same_weights(model, loaded)


def test_save_refuses_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="suffix"):
        save_checkpoint(
            tmp_path / "m.onnx",
            build_model(ModelSpec("vgg11", width_mult=0.125)),
            ModelSpec("vgg11"),
        )


class _Evil:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.target), "w"))


def test_pickle_with_code_is_rejected_and_never_runs(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": _Evil(target)}, path)
    assert not target.exists()
    with pytest.raises(CheckpointError, match="not a plain tensor checkpoint"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError):
        load_model(path, arch="vgg11")
    assert not target.exists()


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ".bin"])
def test_random_and_truncated_bytes_are_rejected(tmp_path: Path, suffix: str) -> None:
    random_file = tmp_path / f"random{suffix}"
    random_file.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError):
        read_checkpoint(random_file)
    spec = ModelSpec("vgg11", width_mult=0.125)
    good = tmp_path / ("good.safetensors" if suffix == ".safetensors" else "good.pt")
    save_checkpoint(good, build_model(spec), spec)
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable"):
        read_checkpoint(truncated)


def test_missing_file_and_non_tensor_values(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "absent.pt")
    path = tmp_path / "mixed.pt"
    torch.save({"weight": torch.zeros(2), "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="'epoch' holds a int, not a tensor"):
        read_checkpoint(path)


def test_resnet20_state_into_vgg11_names_the_keys() -> None:
    state = build_model(ModelSpec("resnet20")).state_dict()
    with pytest.raises(CheckpointMismatch) as info:
        load_into(build_model(ModelSpec("vgg11")), state)
    message = str(info.value)
    assert "missing keys (features.0.weight" in message
    assert "unexpected keys (conv1.weight" in message
    assert "\n" not in message and len(message) < 1000


def test_misshaped_keys_are_reported_with_both_shapes() -> None:
    spec = ModelSpec("resnet20", width_mult=0.25)
    state = build_model(spec).state_dict()
    narrower = build_model(ModelSpec("resnet20", width_mult=0.25, widths=(3,) + (4,) * 8))
    with pytest.raises(
        CheckpointMismatch,
        match=r"layer1.0.conv1.weight: checkpoint \(4, 4, 3, 3\) vs model \(3, 4, 3, 3\)",
    ):
        load_into(narrower, state)


def test_head_is_reinitialised_when_classes_differ(tmp_path: Path) -> None:
    spec = ModelSpec("vgg11", width_mult=0.125, num_classes=10)
    source = build_model(spec)
    path = tmp_path / "vgg.pt"
    save_checkpoint(path, source, spec)
    target, target_spec, report = load_model(path, num_classes=3)
    assert report.head_reinitialised and set(report.skipped_keys) == {
        "classifier.weight",
        "classifier.bias",
    }
    own, theirs = target.state_dict(), source.state_dict()
    assert all(torch.equal(own[k], theirs[k]) for k in own if not k.startswith("classifier."))
    assert target_spec.num_classes == 3 and target.eval()(torch.randn(2, 3, 32, 32)).shape == (2, 3)
    with pytest.raises(CheckpointMismatch, match=r"classifier\.weight"):
        load_into(
            build_model(ModelSpec("vgg11", width_mult=0.125, num_classes=3)),
            theirs,
            reinit_head_for_classes=False,
        )


def test_plain_state_dict_needs_arch_and_infers_the_rest(tmp_path: Path) -> None:
    spec = ModelSpec(
        "resnet20", in_channels=1, num_classes=4, width_mult=0.25, widths=(2, 3, 4) * 3
    )
    model = build_model(spec)
    path = tmp_path / "plain.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)  # DataParallel keys
    with pytest.raises(CheckpointError, match="arch"):
        load_model(path)
    loaded, inferred, report = load_model(path, arch="resnet20")
    assert inferred == spec
    assert isinstance(loaded, PrunableModel)
    assert unit_widths(loaded, loaded.prunable_units()) == [2, 3, 4] * 3
    assert _same_weights(model, loaded) and report.loaded_keys == len(model.state_dict())


def test_plain_safetensors_and_arch_conflict(tmp_path: Path) -> None:
    model = build_model(ModelSpec("mobilenet", width_mult=0.125))
    plain = tmp_path / "plain.safetensors"
    save_file(model.state_dict(), str(plain))
    loaded, spec, _ = load_model(plain, arch="mobilenet")
    assert spec.width_mult == 0.125 and spec.widths is None and _same_weights(model, loaded)
    stored = tmp_path / "stored.pt"
    save_checkpoint(stored, model, spec)
    with pytest.raises(CheckpointMismatch, match="holds a mobilenet, not a vgg11"):
        load_model(stored, arch="vgg11")


def test_old_checkpoints_without_bn_counters_load(tmp_path: Path) -> None:
    """torchvision's original ResNet weights predate num_batches_tracked."""
    model = build_model(ModelSpec("resnet18", num_classes=1000, width_mult=0.125))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "resnet18-old.pth"
    torch.save(state, path)
    loaded, spec, report = load_model(path, arch="resnet18")
    assert spec == ModelSpec("resnet18", num_classes=1000, width_mult=0.125)
    assert report.loaded_keys == len(state) == 122 - 20
    assert _same_weights(model, loaded)


def test_bad_structure_metadata_is_rejected(tmp_path: Path) -> None:
    state = build_model(ModelSpec("vgg11", width_mult=0.125)).state_dict()
    for raw, message in [("{not json", "not JSON"), ('{"widths": [1]}', "invalid structure")]:
        path = tmp_path / "bad.safetensors"
        save_file(state, str(path), metadata={"edgeprune.structure": raw})
        with pytest.raises(CheckpointError, match=message):
            read_checkpoint(path)
