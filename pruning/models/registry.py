"""Model registry: builders registered by name, keyword-only, with explicit widths.

Every builder has the signature

    builder(*, in_channels: int = 3, num_classes: int = 10, width_mult: float = 1.0,
            widths: Sequence[int] | None = None) -> nn.Module

`width_mult` scales every channel count of the default architecture (for small test nets);
`widths` then overrides the width of each prunable unit, in the order of the model's
`prunable_units()`, which is how a pruned structure is rebuilt from its `ModelSpec`.

Networks from outside the zoo arrive as a builder taking only `num_classes` and
`in_channels`: an import string `module:callable` (library and CLI; `module` may also be a
`.py` file path) or a name registered by an installed package under the entry-point group
`edgeprune.models`. Their pruned structures are rebuilt by building the full network and
removing channels from the convs named in `ModelSpec.unit_convs` (`pruning.network.rebuild`).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import logging
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from torch import nn

ENTRY_POINT_GROUP = "edgeprune.models"
log = logging.getLogger(__name__)


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


def available_models(*, installed: bool = False) -> list[str]:
    """The zoo's names; with `installed`, also those of installed packages' entry points."""
    _load_zoo()
    return sorted({*_REGISTRY, *(installed_architectures() if installed else [])})


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a (possibly pruned) model without pickled modules."""

    arch: str
    in_channels: int = 3
    num_classes: int = 10
    width_mult: float = 1.0
    widths: tuple[int, ...] | None = field(default=None)
    # The convs `widths` belong to, when they are not the zoo model's own unit list (units
    # discovered from the graph); rebuilding then needs the input's height and width.
    unit_convs: tuple[str, ...] | None = field(default=None)
    input_hw: tuple[int, int] | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(self.widths) if self.widths is not None else None
        for key in ("unit_convs", "input_hw"):
            if data[key] is None:
                del data[key]  # the zoo's specs stay as they were
            else:
                data[key] = list(data[key])
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
            unit_convs=tuple(str(c) for c in data["unit_convs"])
            if data.get("unit_convs")
            else None,
            input_hw=(
                (int(data["input_hw"][0]), int(data["input_hw"][1]))
                if data.get("input_hw")
                else None
            ),
        )


def is_import_string(arch: str) -> bool:
    return ":" in arch


def build_model(spec: ModelSpec, *, allow_import: bool = True) -> nn.Module:
    """The network `spec` describes, pruned widths included. `allow_import=False` refuses
    import strings (the worker builds only installed, registered architectures)."""
    builder = resolve_builder(spec.arch)
    discovered = spec.unit_convs is not None
    if builder is not None:
        model = builder(
            in_channels=spec.in_channels,
            num_classes=spec.num_classes,
            width_mult=spec.width_mult,
            widths=None if discovered else spec.widths,
        )
    else:
        external = external_builder(spec.arch, allow_import=allow_import)  # unknown: raises
        if spec.width_mult != 1.0:
            raise ValueError(f"width_mult applies to the zoo only; {spec.arch} is built as it is")
        model = call_external(external, spec.arch, spec.num_classes, spec.in_channels)
        if spec.widths is not None and not discovered:
            raise ValueError(f"pruned widths of {spec.arch} need the convs they belong to")
    if discovered and spec.widths is not None:
        from pruning.network.rebuild import shrink_to_widths  # torch-pruning is only needed here

        shrink_to_widths(model, spec)
    return model


def resolve_builder(arch: str) -> ModelBuilder | None:
    """The zoo builder for `arch`; None when `arch` is not a zoo name (see external_builder)."""
    _load_zoo()
    return _REGISTRY.get(arch)


ExternalBuilder = Callable[..., nn.Module]


def external_builder(arch: str, *, allow_import: bool = True) -> ExternalBuilder:
    if is_import_string(arch):
        if not allow_import:
            raise UnknownArchitecture(f"import strings are not accepted here: {arch!r}")
        return import_builder(arch)
    installed = installed_architectures()
    if arch in installed:
        return _load_entry_point(arch)
    known = ", ".join(sorted({*_REGISTRY, *installed}))
    raise UnknownArchitecture(f"unknown arch {arch!r}; known: {known}")


@functools.lru_cache(maxsize=32)
def import_builder(target: str) -> ExternalBuilder:
    """`package.module:callable` or `path/to/file.py:callable`, as a builder. Cached: the CLI
    checks the name before the run builds the model, and a user's file runs once."""
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise UnknownArchitecture(f"{target!r} is not module:callable")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name).expanduser().resolve()
            if not path.is_file():
                raise UnknownArchitecture(f"no such file: {module_name}")
            spec = importlib.util.spec_from_file_location(f"edgeprune_user_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except UnknownArchitecture:
        raise
    except Exception as exc:  # a user's module may raise anything while importing
        raise UnknownArchitecture(
            f"cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    builder = getattr(module, attr, None)
    if builder is None or not callable(builder):
        raise UnknownArchitecture(f"{module_name} has no callable {attr!r}")
    return builder


def installed_architectures() -> list[str]:
    """Names registered by installed packages under the `edgeprune.models` entry points."""
    return sorted({ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)})


def buildable_architectures() -> list[tuple[str, str]]:
    """(name, source) of every architecture this process can build: the zoo, then each
    installed entry point that imports. A broken or clashing one is logged and left out, so
    it never takes the others down."""
    _load_zoo()
    found = [(name, "zoo") for name in sorted(_REGISTRY)]
    for name in installed_architectures():
        if name in _REGISTRY:
            log.warning("entry point %s is shadowed by the zoo's architecture of that name", name)
            continue
        if not _SERVICE_NAME.fullmatch(name):
            log.warning("entry point %r is not a valid architecture name; left out", name)
            continue
        try:
            _load_entry_point(name)
        except UnknownArchitecture as exc:
            log.warning("%s", exc)
            continue
        found.append((name, "installed"))
    return found


# Names the service accepts (service/api/forms.py): no ':' or '/', so never an import string.
_SERVICE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _load_entry_point(name: str) -> ExternalBuilder:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                builder = ep.load()
            except Exception as exc:  # a broken package must not take the others down
                log.warning("entry point %s = %s fails to import: %s", name, ep.value, exc)
                raise UnknownArchitecture(
                    f"architecture {name!r} is installed but fails to import: {exc}"
                ) from None
            if not callable(builder):
                raise UnknownArchitecture(f"entry point {name!r} is not callable")
            return builder
    raise UnknownArchitecture(f"unknown arch {name!r}")


def call_external(
    builder: ExternalBuilder, arch: str, num_classes: int, in_channels: int
) -> nn.Module:
    """Call a user's builder with the two keyword arguments of the contract; any failure is
    one clear error."""
    try:
        inspect.signature(builder).bind(num_classes=num_classes, in_channels=in_channels)
    except TypeError:
        raise UnknownArchitecture(
            f"{arch} must accept keyword arguments num_classes and in_channels"
        ) from None
    except ValueError:
        pass  # no signature to inspect (a C callable): just call it
    try:
        model = builder(num_classes=num_classes, in_channels=in_channels)
    except Exception as exc:
        raise UnknownArchitecture(f"{arch} failed to build: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise UnknownArchitecture(f"{arch} returned {type(model).__name__}, not a torch nn.Module")
    return model


def _load_zoo() -> None:
    # Importing the zoo modules runs their @register_model decorators.
    from pruning.models import zoo  # noqa: F401
