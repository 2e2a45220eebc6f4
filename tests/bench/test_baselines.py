"""The baselines prune what they claim to, and land within a point of the FLOPs target."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.baselines import calibration_batches, l1_filter_norms, pfec_prune, taylor_prune
from pruning.models.registry import ModelSpec, build_model
from pruning.network.metrics import count_model
from pruning.network.units import unit_widths

SHAPE = (1, 32, 32)


def _tiny(arch: str, width: float = 0.25) -> nn.Module:
    torch.manual_seed(0)
    return build_model(ModelSpec(arch=arch, in_channels=1, num_classes=4, width_mult=width))


def _reduction(before: nn.Module, after: nn.Module) -> float:
    return 1.0 - count_model(after, SHAPE).flops / count_model(before, SHAPE).flops


@pytest.mark.parametrize("target", [0.5, 0.7])
def test_pfec_keeps_the_largest_l1_filters_and_meets_the_target(target: float) -> None:
    original = _tiny("vgg11")
    units = original.prunable_units()  # type: ignore[operator]
    norms = l1_filter_norms(original, units)
    weights = [dict(original.named_modules())[u.conv].weight.detach().clone() for u in units]
    pruned = _tiny("vgg11")
    kept = pfec_prune(pruned, torch.zeros(1, *SHAPE), target)

    assert abs(_reduction(original, pruned) - target) <= 0.01
    assert unit_widths(pruned, units) == kept
    capacity = unit_widths(original, units)
    # Uniform: every unit keeps the same share of its filters, up to rounding.
    shares = [a / c for a, c in zip(kept, capacity, strict=True)]
    assert max(shares) - min(shares) <= 0.1
    previous = torch.arange(SHAPE[0])
    for unit, norm, weight, keep in zip(units, norms, weights, kept, strict=True):
        top = torch.sort(torch.topk(norm, keep).indices).values
        expected = weight[top][:, previous]
        actual = dict(pruned.named_modules())[unit.conv].weight.detach()
        torch.testing.assert_close(actual, expected)
        previous = top  # in VGG the next conv reads exactly this unit's channels


@pytest.mark.parametrize(
    ("arch", "width", "target"),
    [("vgg11", 0.25, 0.5), ("resnet20", 0.5, 0.7), ("mobilenet", 0.25, 0.7)],
)
def test_taylor_global_meets_the_target_within_a_point(
    arch: str, width: float, target: float
) -> None:
    model = _tiny(arch, width)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(32, *SHAPE, generator=generator)
    y = torch.randint(0, 4, (32,), generator=generator)
    batches = calibration_batches(x, y, 16, 2, 0)
    outcome = taylor_prune(model, torch.zeros(1, *SHAPE), batches, target)

    assert abs(outcome.flops_reduction - target) <= 0.01
    assert abs(_reduction(model, outcome.model) - outcome.flops_reduction) < 1e-9
    before = dict(model.named_modules())
    after = dict(outcome.model.named_modules())
    head = after[model.head_name]  # type: ignore[index]
    assert isinstance(head, nn.Linear) and head.out_features == 4
    # Only our units shrink: a conv that is neither a unit's nor a depthwise follower of one
    # (ResNet's residual-coupled convs, the stems) keeps its width.
    units = outcome.model.prunable_units()  # type: ignore[operator]
    unit_convs = {u.conv for u in units}
    for name, module in after.items():
        if isinstance(module, nn.Conv2d) and name not in unit_convs and module.groups == 1:
            original = before[name]
            assert isinstance(original, nn.Conv2d)
            assert module.out_channels == original.out_channels, name
    # Global ranking: the units do not all keep one uniform share.
    widths = zip(unit_widths(outcome.model, units), unit_widths(model, units), strict=True)
    assert len({round(w / c, 2) for w, c in widths}) > 1
    assert outcome.model(x[:2]).shape == (2, 4)
