"""Removal ≡ masking, ONNX ≡ torch, save/reload ≡ itself, resume ≡ unbroken, cancel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch

from pruning.checkpoints import load_model, save_checkpoint
from pruning.config import Cancelled, CompressConfig, ProgressEvent, RunHooks, Target
from pruning.engine import PruningMismatch, compress_model
from pruning.export.onnx import export_onnx
from pruning.network.dependency import DependencyAdapter
from pruning.network.units import unit_widths
from pruning.structure.gates import UnitGates
from tests.pruning.engine_helpers import ARCHS, random_task, tiny_model, tiny_spec


@pytest.mark.parametrize("arch", ARCHS)
def test_removing_channels_equals_masking_them(arch: str) -> None:
    model = tiny_model(arch).eval()
    # Default BN (mean 0, var 1, weight 1, bias 0) maps a zeroed channel to zero, which hides
    # a gate placed before a channel-wise op: random statistics and affine terms expose it.
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.5)  # type: ignore[union-attr]
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)  # type: ignore[union-attr]
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.5)
    units = model.prunable_units()  # type: ignore[operator]
    widths = unit_widths(model, units)
    x = torch.randn(4, 1, 32, 32)
    adapter = DependencyAdapter(model, x[:1], units)
    generator = torch.Generator().manual_seed(3)
    masks = []
    for width in widths:
        mask = torch.rand(width, generator=generator) < 0.5
        mask[torch.randint(0, width, (1,), generator=generator)] = True  # keep at least one
        masks.append(mask)
    gates = UnitGates(model, units, widths)
    gates.set_masks(masks)
    with torch.no_grad():
        masked = model(x)
    gates.remove()
    adapter.remove_channels(masks)
    with torch.no_grad():
        pruned = model(x)
    assert unit_widths(model, units) == [int(m.sum()) for m in masks]
    assert masked.abs().max() > 0
    assert (masked - pruned).abs().max() <= 1e-4 * max(1.0, float(masked.abs().max()))


def _config(**overrides: Any) -> CompressConfig:
    values: dict[str, Any] = {
        "target": Target("flops", 0.5),
        "structure_epochs": 2,
        "finetune_epochs": 2,
        "batch_size": 16,
        "calibration_batches": 2,
    }
    values.update(overrides)
    return CompressConfig(**values)


def test_onnx_export_matches_torch_and_reload_matches_itself(tmp_path: Path) -> None:
    spec = tiny_spec("mobilenet")
    result = compress_model(tiny_model("mobilenet"), spec, random_task(), _config())
    model = result.model.eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        expected = model(x).numpy()

    diff = export_onnx(model, (1, 32, 32), tmp_path / "m.onnx")
    assert diff <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (got,) = session.run(["logits"], {"input": x.numpy()})  # dynamic batch: 3, not 1
    assert np.max(np.abs(got - expected)) <= 1e-4

    save_checkpoint(tmp_path / "pruned.pt", model, result.spec)
    reloaded, reloaded_spec, _ = load_model(tmp_path / "pruned.pt")
    assert reloaded_spec == result.spec
    with torch.no_grad():
        torch.testing.assert_close(reloaded.eval()(x).numpy(), expected, rtol=0, atol=0)


class _Interrupt(Exception):
    pass


def test_resumed_run_equals_an_unbroken_one() -> None:
    spec = tiny_spec("resnet20")
    unbroken = compress_model(tiny_model("resnet20"), spec, random_task(), _config())

    saved: list[dict[str, Any]] = []

    def save_then_die(state: dict[str, Any]) -> None:
        saved.append(state)
        if state["phase"] == "structure_learning" and state["epoch"] == 1:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        compress_model(
            tiny_model("resnet20"),
            spec,
            random_task(),
            _config(),
            RunHooks(save_checkpoint=save_then_die),
        )
    # Resume twice: once from structure learning, once from the middle of weight learning.
    states: list[dict[str, Any]] = []
    resumed = compress_model(
        tiny_model("resnet20"),
        spec,
        random_task(),
        _config(),
        RunHooks(save_checkpoint=states.append, load_checkpoint=lambda: saved[-1]),
    )
    mid_weight_learning = next(s for s in states if s["phase"] == "weight_learning")
    resumed_again = compress_model(
        tiny_model("resnet20"),
        spec,
        random_task(),
        _config(),
        RunHooks(load_checkpoint=lambda: mid_weight_learning),
    )
    for run in (resumed, resumed_again):
        assert run.spec == unbroken.spec
        assert run.pruned["accuracy"] == unbroken.pruned["accuracy"]
        for key, value in unbroken.model.state_dict().items():
            torch.testing.assert_close(run.model.state_dict()[key], value)
        assert [h["epoch"] for h in run.history] == [1, 2, 1, 2]


def test_cancel_is_honoured_within_a_step() -> None:
    polls = 0

    def should_cancel() -> bool:
        nonlocal polls
        polls += 1
        return polls > 3

    with pytest.raises(Cancelled):
        compress_model(
            tiny_model("vgg11"),
            tiny_spec("vgg11"),
            random_task(),
            _config(),
            RunHooks(should_cancel=should_cancel),
        )
    assert polls == 4


def test_progress_events_cover_every_phase_in_order() -> None:
    events: list[ProgressEvent] = []
    compress_model(
        tiny_model("vgg11"),
        tiny_spec("vgg11"),
        random_task(),
        _config(),
        RunHooks(on_progress=events.append),
    )
    phases = list(dict.fromkeys(e.phase for e in events))
    assert phases == ["calibrating", "structure_learning", "pruning", "weight_learning"]
    progress = [e.progress for e in events]
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)
    epoch_ends = [
        e for e in events if e.message == "epoch done" and e.phase == "structure_learning"
    ]
    assert len(epoch_ends) == 2 and all(e.channels for e in epoch_ends)


@pytest.mark.parametrize("arch", ARCHS)
def test_gates_folded_into_consumers_equal_gates_on_feature_maps(arch: str) -> None:
    """Folding g into the readers' weights computes the same function of g: same outputs,
    same eq. (5) scores after eq. (6), same weight gradients."""
    torch.manual_seed(0)
    hooked, folded = tiny_model(arch), tiny_model(arch)
    units = hooked.prunable_units()  # type: ignore[operator]
    widths = unit_widths(hooked, units)
    x = torch.randn(6, 1, 32, 32)
    y = torch.randint(0, 4, (6,))
    folded.eval()
    consumers = DependencyAdapter(folded, x[:1], units).consumers()
    assert all(consumers), "every unit of the zoo has a layer that reads it"
    generator = torch.Generator().manual_seed(5)
    masks = [torch.rand(w, generator=generator) < 0.6 for w in widths]
    results = []
    for model, readers in ((hooked, None), (folded, consumers)):
        gates = UnitGates(model, units, widths, readers)
        gates.set_masks(masks)
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        scores = gates.normalised_scores()
        gates.remove()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.item(), scores, grads))
    (loss_h, scores_h, grads_h), (loss_f, scores_f, grads_f) = results
    assert loss_h == pytest.approx(loss_f, rel=1e-5)
    for sh, sf in zip(scores_h, scores_f, strict=True):
        torch.testing.assert_close(sh, sf, rtol=1e-3, atol=1e-5)
    assert grads_h.keys() == grads_f.keys()
    for name, grad in grads_h.items():
        torch.testing.assert_close(grads_f[name], grad, rtol=1e-3, atol=1e-5)


def test_calibration_leaves_the_checkpoints_bn_statistics_alone() -> None:
    from pruning.engine.calibration import calibrate
    from pruning.engine.progress import RunProgress
    from pruning.network.cost import CostModel
    from pruning.structure.learner import StructureLearner

    model = tiny_model("resnet20")
    units = model.prunable_units()  # type: ignore[operator]
    widths = unit_widths(model, units)
    task = random_task()
    example = task.x_test[:1]
    model.eval()
    adapter = DependencyAdapter(model, example, units)
    cost = CostModel.build(model, example, adapter.couplings(), widths)
    gates = UnitGates(model, units, widths, adapter.consumers())
    config = _config(calibration_batches=3)
    learner = StructureLearner(gates, widths, cost, config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    calibrate(
        model, task, learner, config, torch.device("cpu"), 3, RunProgress(RunHooks(), 3), None
    )
    assert learner._calibration_batches == 3  # it did run, in train mode, with gradients
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_a_removal_that_differs_from_the_masking_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The self-check is what stands between a wrong removal and a published model."""
    original = DependencyAdapter.remove_channels

    def remove_the_wrong_channels(self: DependencyAdapter, masks: list[torch.Tensor]) -> None:
        original(self, [mask.roll(1) for mask in masks])

    monkeypatch.setattr(DependencyAdapter, "remove_channels", remove_the_wrong_channels)
    config = CompressConfig(
        target=Target("flops", 0.5), structure_epochs=1, finetune_epochs=0, batch_size=16,
        calibration_batches=1, device="cpu",
    )  # fmt: skip
    with pytest.raises(PruningMismatch, match="differs from the masked one"):
        compress_model(tiny_model("vgg11"), tiny_spec("vgg11"), random_task(), config)
