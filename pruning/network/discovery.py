"""Prunable units of any CNN, found from torch-pruning's dependency graph.

Every conv's output channels root a candidate group: the layers whose channels must shrink
with them (BN, depthwise convs, the convs and linear layers that read them, a
squeeze-and-excitation's expand conv, the other branch of a residual addition, the slices of a
concatenation). A candidate becomes a unit unless

- a user named it (or a module above it) as not to be pruned;
- its channels reach the network's output without passing a layer that mixes channels (the
  classifier, or a conv whose outputs are the logits);
- a residual addition ties it to other convs' outputs, and the policy is the paper's
  ("inside": only channels that stay inside a block are pruned; "coupled" prunes the tied
  channels as one unit);
- it touches a grouped conv that is not depthwise (removing single channels there breaks the
  group sizes; those channels are kept);
- torch-pruning cannot follow where its channels go (a reshape such as a channel shuffle:
  the group maps the wrong number of indices).

Where the gate sits. The unit's gate is folded into the weights of every layer that reads
the unit's channels (`pruning.structure.gates`): that is the unit's end, after whatever
channel-wise layers follow the conv (BN, activation, depthwise conv, pooling, a squeeze-and-
excitation's product, a consumer's own pre-activation BN and ReLU in a DenseNet), and before
the first layer that mixes channels. Eq. (5) is exact there — a masked channel contributes
nothing to any reader, which is what removing it does — while a gate right after the conv
would be wrong wherever a BN or a depthwise conv follows (BN(0) ≠ 0). Finally `verify_units`
masks random channels and removes them on a float64 copy, and a unit whose removal does not
reproduce its masking is dropped with the reason, before any training.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from pruning.config import ResidualPolicy
from pruning.network.dependency import (
    DependencyAdapter,
    build_graph,
    is_depthwise,
    is_mixing,
    out_channel_group,
)
from pruning.network.units import UnitSpec, unit_widths
from pruning.structure.gates import UnitGates

_ADDITIONS = ("AddBackward", "SubBackward")


class NoPrunableUnits(ValueError):
    """The model has no conv whose output channels can be pruned."""


@dataclass(frozen=True)
class KeptConv:
    """A conv whose output channels are not pruned, and why."""

    conv: str
    reason: str


@dataclass(frozen=True)
class Discovery:
    units: list[UnitSpec]
    kept: list[KeptConv]
    declared: bool = False  # the model's own hand-written list, not discovered

    def describe(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = [{"conv": u.conv, "pruned": True} for u in self.units]
        rows += [{"conv": k.conv, "pruned": False, "reason": k.reason} for k in self.kept]
        return rows


def _ignored(name: str, ignore: Iterable[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in ignore)


def discover_units(
    model: nn.Module,
    example: Tensor,
    *,
    ignore: Sequence[str] = (),
    residual: ResidualPolicy = "inside",
    verify: bool = True,
) -> Discovery:
    """The prunable units of `model` (in module order), and the convs kept whole with a
    reason. `example` is one input sample; the model is traced in eval mode."""
    if residual not in ("inside", "coupled"):
        raise ValueError(f"residual policy must be inside or coupled, got {residual!r}")
    was_training = model.training
    model.eval()
    try:
        graph = build_graph(model, example)
    finally:
        model.train(was_training)
    names = {module: name for name, module in model.named_modules()}
    units: list[UnitSpec] = []
    kept: list[KeptConv] = []
    covered: set[str] = set()
    for name, conv in model.named_modules():
        if not isinstance(conv, nn.Conv2d) or is_depthwise(conv) or name in covered:
            continue
        if _ignored(name, ignore):
            kept.append(KeptConv(name, "named as not to be pruned"))
            continue
        width = conv.out_channels
        roots: list[str] = []
        readers = 0
        reason = None
        for dep, idxs in out_channel_group(graph, conv, range(width)):
            target = dep.target.module
            fn_name = type(getattr(dep.target, "grad_fn", None)).__name__
            if fn_name.startswith(_ADDITIONS) and residual == "inside":
                reason = reason or "its channels are tied by a residual addition"
            layer = names.get(target)
            if layer is None or not isinstance(target, nn.Conv2d | nn.Linear | nn.BatchNorm2d):
                continue
            out = graph.is_out_channel_pruning_fn(dep.handler)
            size = _dim_size(target, out)
            if len(set(idxs)) != len(idxs) or max(idxs, default=0) >= size:
                reason = reason or f"torch-pruning cannot follow its channels into {layer}"
            elif len(idxs) % width:
                reason = reason or f"its channels reach {layer} through a reshape"
            if isinstance(target, nn.Conv2d) and target.groups > 1 and not is_depthwise(target):
                reason = f"it is tied to grouped conv {layer} (groups={target.groups})"
            if out and isinstance(target, nn.Conv2d | nn.Linear) and not is_depthwise(target):
                roots.append(layer)
            elif not out and is_mixing(target):
                readers += 1
            if _ignored(layer, ignore) and out:
                reason = reason or f"it is tied to {layer}, named as not to be pruned"
        covered.update(roots)
        if readers == 0:
            reason = reason or "its channels reach the output unmixed (the classifier)"
        if reason is not None:
            kept.append(KeptConv(name, reason))
            continue
        units.append(UnitSpec(name=name, conv=name))
    discovery = Discovery(units, kept)
    if verify and units:
        discovery = verify_units(model, example, discovery)
    if not discovery.units:
        why = "; ".join(f"{k.conv}: {k.reason}" for k in discovery.kept) or "it has no conv"
        raise NoPrunableUnits(f"no prunable conv found in {type(model).__name__} ({why})")
    return discovery


def _dim_size(module: nn.Module, out: bool) -> int:
    if isinstance(module, nn.Conv2d):
        return module.out_channels if out else module.in_channels
    if isinstance(module, nn.Linear):
        return module.out_features if out else module.in_features
    assert isinstance(module, nn.BatchNorm2d)
    return module.num_features


def _randomise_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """With default BN (mean 0, var 1, γ 1, β 0) a misplaced gate can go unnoticed."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d) and module.running_mean is not None:
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator, dtype=torch.float64))
                assert module.running_var is not None
                module.running_var.copy_(
                    torch.rand(n, generator=generator, dtype=torch.float64) + 0.5
                )
                if module.affine:
                    module.weight.copy_(torch.randn(n, generator=generator, dtype=torch.float64))
                    module.bias.copy_(torch.randn(n, generator=generator, dtype=torch.float64))


def removal_mismatch(
    model: nn.Module, example: Tensor, units: Sequence[UnitSpec], seed: int = 0
) -> float:
    """Largest relative difference between the masked and the pruned network, on a float64
    copy with random BN statistics and a random half of every unit's channels masked."""
    generator = torch.Generator().manual_seed(seed)
    probe = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()
    _randomise_batchnorm(probe, generator)
    x = torch.randn((4, *example.shape[1:]), generator=generator, dtype=torch.float64)
    one = x[:1]
    widths = unit_widths(probe, list(units))
    adapter = DependencyAdapter(probe, one, units)
    gates = UnitGates(probe, units, widths, adapter.consumers())
    masks = []
    for width in widths:
        mask = torch.rand(width, generator=generator) < 0.5
        mask[int(torch.randint(width, (1,), generator=generator))] = True
        masks.append(mask)
    gates.set_masks(masks)
    with torch.no_grad():
        masked = probe(x)
    gates.remove()
    adapter.remove_channels(masks)
    with torch.no_grad():
        pruned = probe(x)
    if masked.shape != pruned.shape:
        return float("inf")
    scale = float(masked.abs().max()) or 1.0
    return float((masked - pruned).abs().max()) / scale


def verify_units(model: nn.Module, example: Tensor, discovery: Discovery) -> Discovery:
    """Keep the units whose removal reproduces their masking; a failing set is checked unit by
    unit so that one op torch-pruning cannot follow costs only the units it touches."""
    tolerance = 1e-9
    units = list(discovery.units)
    if _mismatch_or_error(model, example, units) <= tolerance:
        return discovery
    good, kept = [], list(discovery.kept)
    for unit in units:
        if _mismatch_or_error(model, example, [unit]) <= tolerance:
            good.append(unit)
        else:
            kept.append(KeptConv(unit.conv, "removing its channels does not match masking them"))
    if good and _mismatch_or_error(model, example, good) > tolerance:
        kept += [KeptConv(u.conv, "removal interacts with another unit's") for u in good]
        good = []
    return Discovery(good, kept)


def _mismatch_or_error(model: nn.Module, example: Tensor, units: Sequence[UnitSpec]) -> float:
    try:
        return removal_mismatch(model, example, units)
    except (RuntimeError, ValueError, IndexError):
        return float("inf")
