"""Weight learning's distillation loss and the frozen teacher it reads."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pruning.config import CompressConfig, DistillPhases, RunHooks, Target
from pruning.distillation import Distillation
from pruning.engine import compress_model
from pruning.training import train_one_epoch
from tests.pruning.engine_helpers import random_task, tiny_model, tiny_spec


def _teacher(weight: float, temperature: float = 4.0) -> Distillation:
    return Distillation.frozen_copy(nn.Linear(5, 3), weight, temperature)


def test_weight_zero_is_plain_cross_entropy() -> None:
    logits, teacher, labels = torch.randn(8, 3), torch.randn(8, 3), torch.randint(0, 3, (8,))
    loss = _teacher(0.0).loss(logits, teacher, labels)
    assert torch.allclose(loss, F.cross_entropy(logits, labels))


def test_soft_term_is_zero_when_the_student_matches_the_teacher_and_positive_otherwise() -> None:
    labels = torch.randint(0, 3, (8,))
    logits = torch.randn(8, 3)
    only_soft = _teacher(1.0)
    assert float(only_soft.loss(logits, logits.clone(), labels)) == pytest.approx(0.0, abs=1e-6)
    assert float(only_soft.loss(logits, logits.flip(1), labels)) > 0.01


def test_mixture_and_temperature_scaling() -> None:
    """(1 − w)·CE + w·T²·KL, KL taken between the distributions at temperature T."""
    logits, teacher, labels = torch.randn(16, 3), torch.randn(16, 3), torch.randint(0, 3, (16,))
    w, t = 0.3, 2.0
    p_teacher = F.softmax(teacher / t, dim=1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(logits / t, dim=1))).sum(1).mean()
    expected = (1 - w) * F.cross_entropy(logits, labels) + w * t * t * kl
    assert torch.allclose(_teacher(w, t).loss(logits, teacher, labels), expected, atol=1e-6)


def test_the_teacher_is_a_frozen_copy_in_eval_mode() -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    model.train()
    distillation = Distillation.frozen_copy(model, 0.5, 4.0)
    assert not distillation.teacher.training
    assert all(not p.requires_grad for p in distillation.teacher.parameters())
    before = distillation.teacher_logits(torch.ones(2, 4)).clone()
    with torch.no_grad():  # the student changes; the teacher must not
        for p in model.parameters():
            p.add_(1.0)
    assert torch.equal(distillation.teacher_logits(torch.ones(2, 4)), before)
    assert all(p.requires_grad for p in model.parameters())


def test_training_with_only_the_soft_term_moves_the_student_towards_the_teacher() -> None:
    torch.manual_seed(0)
    x = torch.randn(256, 6)
    teacher_model = nn.Linear(6, 4)
    # Labels that disagree with the teacher: with weight 1 they must not matter.
    y = (teacher_model(x).argmax(1) + 1) % 4
    distillation = Distillation.frozen_copy(teacher_model, 1.0, 1.0)
    student = nn.Linear(6, 4)

    def gap() -> float:
        with torch.no_grad():
            return float((F.softmax(student(x), 1) - F.softmax(teacher_model(x), 1)).abs().mean())

    start = gap()
    optimizer = torch.optim.SGD(student.parameters(), lr=0.5)
    for epoch in range(10):
        train_one_epoch(
            student,
            x,
            y,
            optimizer=optimizer,
            batch_size=32,
            generator=torch.Generator().manual_seed(epoch),
            augment=False,
            device=torch.device("cpu"),
            distillation=distillation,
        )
    assert gap() < start / 4
    assert (student(x).argmax(1) == teacher_model(x).argmax(1)).float().mean() > 0.9


@pytest.mark.parametrize(
    ("field", "value"), [("distill", -0.1), ("distill", 1.5), ("distill_temperature", 0.0)]
)
def test_config_refuses_out_of_range_values(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        CompressConfig(target=Target("flops", 0.5), **{field: value})


def _distill_config(distill: float, phases: DistillPhases = "weights") -> CompressConfig:
    return CompressConfig(
        target=Target("flops", 0.5),
        structure_epochs=1,
        finetune_epochs=2,
        batch_size=16,
        calibration_batches=2,
        distill=distill,
        distill_phases=phases,
        seed=0,
        device="cpu",
    )


def test_the_engine_distils_from_the_checkpoint_in_weight_learning_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every weight-learning step (and no structure-learning step) takes the teacher's term,
    and the teacher is the checkpoint as given, not the network structure learning trained."""
    original = tiny_model("vgg11")
    given = {k: v.clone() for k, v in original.state_dict().items()}
    teachers: list[nn.Module] = []
    real_loss = Distillation.loss

    def counting_loss(self: Distillation, *args: torch.Tensor) -> torch.Tensor:
        teachers.append(self.teacher)
        return real_loss(self, *args)

    monkeypatch.setattr(Distillation, "loss", counting_loss)
    task = random_task()
    result = compress_model(original, tiny_spec("vgg11"), task, _distill_config(0.5))
    steps = -(-task.x_train.shape[0] // 16)
    assert len(teachers) == 2 * steps  # two weight-learning epochs, no structure epoch
    for key, value in teachers[0].state_dict().items():
        torch.testing.assert_close(value, given[key])
    plain = compress_model(tiny_model("vgg11"), tiny_spec("vgg11"), task, _distill_config(0.0))
    assert len(teachers) == 2 * steps  # distill=0 builds no teacher
    assert result.spec == plain.spec  # the structure is learned the same way
    trained = [h["train_loss"] for h in result.history if h["phase"] == "weight_learning"]
    assert trained != [h["train_loss"] for h in plain.history if h["phase"] == "weight_learning"]


def test_with_phases_both_structure_learning_follows_the_teacher_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every training step of both phases takes the teacher's term, so the saliencies that
    drive redistribution come from the distilled loss and the structure can differ."""
    calls: list[int] = []
    real_loss = Distillation.loss

    def counting_loss(self: Distillation, *args: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return real_loss(self, *args)

    monkeypatch.setattr(Distillation, "loss", counting_loss)
    task = random_task()
    result = compress_model(
        tiny_model("vgg11"), tiny_spec("vgg11"), task, _distill_config(0.5, "both")
    )
    steps = -(-task.x_train.shape[0] // 16)
    assert len(calls) == 3 * steps  # one structure epoch and two weight-learning epochs
    weights_only = compress_model(
        tiny_model("vgg11"), tiny_spec("vgg11"), task, _distill_config(0.5, "weights")
    )
    structure_losses = [
        [h["train_loss"] for h in r.history if h["phase"] == "structure_learning"]
        for r in (result, weights_only)
    ]
    assert structure_losses[0] != structure_losses[1]


@pytest.mark.parametrize(
    ("phases", "resume_in"), [("weights", "weight_learning"), ("both", "structure_learning")]
)
def test_a_resumed_distilling_run_equals_an_unbroken_one(
    phases: DistillPhases, resume_in: str
) -> None:
    """Resumed mid-phase, the teacher is still the checkpoint as given, not the network the
    saved state holds."""
    spec = tiny_spec("resnet20")
    config = dataclasses.replace(_distill_config(0.5, phases), structure_epochs=2)
    unbroken = compress_model(tiny_model("resnet20"), spec, random_task(), config)
    states: list[dict[str, Any]] = []
    compress_model(
        tiny_model("resnet20"),
        spec,
        random_task(),
        config,
        RunHooks(save_checkpoint=states.append),
    )
    saved = next(s for s in states if s["phase"] == resume_in)
    resumed = compress_model(
        tiny_model("resnet20"),
        spec,
        random_task(),
        config,
        RunHooks(load_checkpoint=lambda: saved),
    )
    assert resumed.pruned["accuracy"] == unbroken.pruned["accuracy"]
    for key, value in unbroken.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value)


def test_no_teacher_is_copied_when_there_is_no_weight_learning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The teacher is a whole copy of the network: a run without weight learning has nothing
    for it to teach and must not hold one."""
    copies: list[nn.Module] = []
    real_copy = Distillation.frozen_copy.__func__  # type: ignore[attr-defined]

    def counting_copy(cls: type[Distillation], model: nn.Module, *args: float) -> Distillation:
        copies.append(model)
        return real_copy(cls, model, *args)

    monkeypatch.setattr(Distillation, "frozen_copy", classmethod(counting_copy))
    config = _distill_config(0.5)
    compress_model(tiny_model("vgg11"), tiny_spec("vgg11"), random_task(), config)
    assert len(copies) == 1
    no_weight_learning = dataclasses.replace(config, finetune_epochs=0)
    compress_model(tiny_model("vgg11"), tiny_spec("vgg11"), random_task(), no_weight_learning)
    assert len(copies) == 1
    # ...but when structure learning distils too, it has epochs to teach.
    structure_only = dataclasses.replace(no_weight_learning, distill_phases="both")
    compress_model(tiny_model("vgg11"), tiny_spec("vgg11"), random_task(), structure_only)
    assert len(copies) == 2


def test_structure_learning_distils_only_with_a_teacher_weight_and_both_phases() -> None:
    assert _distill_config(0.5, "both").distills_structure_learning
    assert not _distill_config(0.5, "weights").distills_structure_learning
    assert not _distill_config(0.0, "both").distills_structure_learning  # no teacher at all
