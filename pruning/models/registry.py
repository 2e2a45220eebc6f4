"""Model registry: builders registered by name, keyword-only, with explicit widths.

Every builder has the signature

    builder(*, in_channels: int = 3, num_classes: int = 10, width_mult: float = 1.0,
            widths: Sequence[int] | None = None) -> nn.Module

`width_mult` scales every channel count of the default architecture (for small test nets);
`widths` then overrides the width of each prunable unit, in the order of the model's
`prunable_units()`, which is how a pruned structure is rebuilt from its `ModelSpec`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from torch import nn


class ModelBuilder(Protocol):
    def __call__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        width_mult: float = 1.0,
        widths: Sequence[int] | None = None,
    ) -> nn.Module: ...


class UnknownArchitecture(ValueError):
    """Raised for an architecture name that is not registered."""


_REGISTRY: dict[str, ModelBuilder] = {}


def register_model(name: str) -> Callable[[ModelBuilder], ModelBuilder]:
    def decorate(builder: ModelBuilder) -> ModelBuilder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = builder
        return builder

    return decorate


def available_models() -> list[str]:
    _load_zoo()
    return sorted(_REGISTRY)


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a (possibly pruned) model without pickled modules."""

    arch: str
    in_channels: int = 3
    num_classes: int = 10
    width_mult: float = 1.0
    widths: tuple[int, ...] | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(self.widths) if self.widths is not None else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        widths = data.get("widths")
        return cls(
            arch=str(data["arch"]),
            in_channels=int(data.get("in_channels", 3)),
            num_classes=int(data.get("num_classes", 10)),
            width_mult=float(data.get("width_mult", 1.0)),
            widths=tuple(int(w) for w in widths) if widths is not None else None,
        )


def build_model(spec: ModelSpec) -> nn.Module:
    _load_zoo()
    try:
        builder = _REGISTRY[spec.arch]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownArchitecture(f"unknown arch {spec.arch!r}; known: {known}") from None
    return builder(
        in_channels=spec.in_channels,
        num_classes=spec.num_classes,
        width_mult=spec.width_mult,
        widths=spec.widths,
    )


def _load_zoo() -> None:
    # Importing the zoo modules runs their @register_model decorators.
    from pruning.models import zoo  # noqa: F401
