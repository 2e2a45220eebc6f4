"""The typed epoch checkpoint: its dict keeps the checkpoint's keys, and it refuses a
checkpoint that could not resume its phase."""

from __future__ import annotations

import pytest
import torch

from pruning.engine.resume import ResumeState


def _state(**changes: object) -> ResumeState:
    fields: dict[str, object] = {
        "phase": "weight_learning",
        "epoch": 2,
        "model": {"w": torch.ones(2)},
        "baseline": {"accuracy": 0.9},
        "history": [{"phase": "weight_learning", "epoch": 1}],
        "timings": {"pruning": 0.1},
        "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(2)}}},
        "scheduler": {"last_epoch": 7},
        "spec": {"arch": "vgg11"},
        "self_check": 1e-6,
    }
    fields.update(changes)
    return ResumeState(**fields)  # type: ignore[arg-type]


def test_a_checkpoint_dict_round_trips_and_is_detached() -> None:
    state = _state()
    raw = state.to_dict()
    assert set(raw) == {
        "phase",
        "epoch",
        "model",
        "baseline",
        "history",
        "timings",
        "optimizer",
        "scheduler",
        "spec",
        "self_check",
    }  # fmt: skip  (no "learner": a weight-learning checkpoint does not hold one)
    state.model["w"].add_(1)  # training goes on after the save
    assert torch.equal(raw["model"]["w"], torch.ones(2))
    again = ResumeState.from_dict(raw)
    assert again.phase == "weight_learning" and again.epoch == 2 and again.self_check == 1e-6


def test_a_checkpoint_that_cannot_resume_its_phase_is_refused() -> None:
    with pytest.raises(ValueError, match="scheduler, spec and check"):
        _state(scheduler=None)
    with pytest.raises(ValueError, match="learner"):
        _state(phase="structure_learning", learner=None)
    with pytest.raises(ValueError, match="not a resumable phase"):
        ResumeState.from_dict({**_state().to_dict(), "phase": "pruning"})
