"""What an epoch checkpoint holds, as a typed object.

`RunHooks.save_checkpoint` receives (and `load_checkpoint` returns) the plain dict of
`ResumeState.to_dict()`: the worker stores it in the artifact store, and its keys are those
of checkpoints written before this type existed, so an interrupted job resumes across an
upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from torch import Tensor, nn

from edgeprune.contracts.jobs import TRAINING_PHASES, TrainingPhase

ResumablePhase = TrainingPhase


@dataclass
class ResumeState:
    phase: ResumablePhase
    epoch: int  # the last finished epoch of `phase`
    model: dict[str, Tensor]
    baseline: dict[str, float]
    history: list[dict[str, Any]]
    timings: dict[str, float]
    optimizer: dict[str, Any]
    learner: dict[str, Any] | None = None  # structure learning: saliency, widths, masks
    scheduler: dict[str, Any] | None = None  # weight learning: the lr schedule
    spec: dict[str, Any] | None = None  # weight learning: the pruned structure
    self_check: float | None = None  # weight learning: removal's masked-vs-pruned diff

    def __post_init__(self) -> None:
        if self.phase == "structure_learning" and self.learner is None:
            raise ValueError("a structure-learning checkpoint needs the learner's state")
        if self.phase == "weight_learning" and (
            self.scheduler is None or self.spec is None or self.self_check is None
        ):
            raise ValueError("a weight-learning checkpoint needs its scheduler, spec and check")

    def to_dict(self) -> dict[str, Any]:
        """A detached copy (tensors cloned to the CPU) with the checkpoint's keys."""
        return {
            f.name: snapshot(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ResumeState:
        phase = raw.get("phase")
        if phase not in TRAINING_PHASES:
            raise ValueError(f"not a resumable phase: {phase!r}")
        return cls(
            phase=phase,
            epoch=int(raw["epoch"]),
            model=raw["model"],
            baseline=dict(raw["baseline"]),
            history=list(raw["history"]),
            timings=dict(raw["timings"]),
            optimizer=raw["optimizer"],
            learner=raw.get("learner"),
            scheduler=raw.get("scheduler"),
            spec=raw.get("spec"),
            self_check=None if raw.get("self_check") is None else float(raw["self_check"]),
        )


def cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def snapshot(value: Any) -> Any:
    """A deep copy with tensors cloned to CPU: optimiser state dicts hold live references to
    buffers that the next step would change under the caller's feet."""
    if isinstance(value, Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(snapshot(v) for v in value)
    return value
