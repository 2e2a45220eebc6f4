"""The model zoo: shapes, unit policy, width overrides, torchvision-identical keys and counts."""

from __future__ import annotations

import pytest
import torch
import torch_pruning as tp
from torch import nn

from pruning.models import ModelSpec, available_models, build_model
from pruning.network.metrics import count_model
from pruning.network.units import PrunableModel, unit_widths

ALL = [
    "mobilenet", "mobilenet_v2", "mobilenet_v2_imagenet", "resnet110", "resnet18", "resnet20",
    "resnet32", "resnet34",
    "resnet50", "resnet56", "vgg11", "vgg13", "vgg16", "vgg19",
]  # fmt: skip
# Small enough to be fast, wide enough that every unit keeps >= 3 channels.
TINY = {"resnet20": 0.25, "resnet32": 0.25, "resnet56": 0.25, "resnet110": 0.25}


def tiny(arch: str, **kwargs: object) -> nn.Module:
    model = build_model(ModelSpec(arch, width_mult=TINY.get(arch, 0.125), **kwargs))  # type: ignore[arg-type]
    return model


def test_registry_lists_the_whole_zoo() -> None:
    assert available_models() == sorted(ALL)


@pytest.mark.parametrize("arch", ALL)
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_shape_and_units_resolve(arch: str, channels: int) -> None:
    model = tiny(arch, in_channels=channels, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, channels, 32, 32))
    assert out.shape == (2, 7)
    assert isinstance(model, PrunableModel)
    modules = dict(model.named_modules())
    units = model.prunable_units()
    assert units, "every zoo model has prunable units"
    assert len({u.name for u in units}) == len(units)
    for unit in units:
        assert isinstance(modules[unit.conv], nn.Conv2d)
        assert unit.gate_at in modules
        assert not isinstance(modules[unit.gate_at], nn.Conv2d | nn.BatchNorm2d)
    head = modules[model.head_name]
    assert isinstance(head, nn.Linear) and head.out_features == 7


@pytest.mark.parametrize("arch", ALL)
def test_widths_override_round_trips(arch: str) -> None:
    model = tiny(arch)
    defaults = unit_widths(model, model.prunable_units())
    widths = [max(1, w - 1 - i % 3) for i, w in enumerate(defaults)]
    rebuilt = build_model(ModelSpec(arch, width_mult=TINY.get(arch, 0.125), widths=tuple(widths)))
    assert isinstance(rebuilt, PrunableModel)
    assert unit_widths(rebuilt, rebuilt.prunable_units()) == widths
    with torch.no_grad():
        assert rebuilt.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("arch", ["vgg11", "resnet20", "resnet50", "mobilenet", "mobilenet_v2"])
def test_widths_of_wrong_length_or_value_are_rejected(arch: str) -> None:
    model = tiny(arch)
    n = len(model.prunable_units())
    with pytest.raises(ValueError, match=f"{n} prunable units"):
        build_model(ModelSpec(arch, width_mult=0.125, widths=(4,) * (n + 1)))
    with pytest.raises(ValueError, match="positive integer"):
        build_model(ModelSpec(arch, width_mult=0.125, widths=(0,) * n))


def test_vgg_gate_moves_to_the_pool_that_ends_the_unit() -> None:
    model = build_model(ModelSpec("vgg11", width_mult=0.125))
    modules = dict(model.named_modules())
    gates = [type(modules[u.gate_at]) for u in model.prunable_units()]
    # vgg11: 64 M 128 M 256 256 M 512 512 M 512 512 M
    assert (
        gates == [nn.MaxPool2d, nn.MaxPool2d, nn.ReLU, nn.MaxPool2d] + [nn.ReLU, nn.MaxPool2d] * 2
    )
    assert model.prunable_units()[0].conv == "features.0"
    assert model.prunable_units()[-1].name == model.prunable_units()[-1].conv


def test_mobilenet_units_end_after_the_next_depthwise() -> None:
    model = build_model(ModelSpec("mobilenet", width_mult=0.125))
    units = model.prunable_units()
    assert len(units) == 10
    assert units[0].conv == "blocks.0.pw" and units[0].gate_at == "blocks.1.dw_relu"
    assert units[-1].conv == "blocks.9.pw" and units[-1].gate_at == "blocks.9.pw_relu"
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len({id(m) for m in relus}) == len(relus) == 21


def test_resnet_gates_are_distinct_modules_inside_blocks() -> None:
    for arch, units_expected in [("resnet20", 9), ("resnet18", 8), ("resnet50", 32)]:
        model = tiny(arch)
        modules = dict(model.named_modules())
        units = model.prunable_units()
        assert len(units) == units_expected
        gates = [modules[u.gate_at] for u in units]
        assert len({id(g) for g in gates}) == len(gates)
        assert all(u.gate_at.rsplit(".", 1)[1] in ("relu1", "relu2") for u in units)


def test_mobilenet_v2_units_are_expand_convs_only() -> None:
    model = build_model(ModelSpec("mobilenet_v2", width_mult=0.125))
    units = model.prunable_units()
    assert len(units) == 16  # 17 blocks, the first has no expansion
    assert all(u.conv.endswith(".expand") and u.gate_at.endswith(".dw_relu") for u in units)
    assert isinstance(dict(model.named_modules())[units[0].gate_at], nn.ReLU6)


def test_resnet18_keys_and_params_match_torchvision() -> None:
    model = build_model(ModelSpec("resnet18", num_classes=1000))
    keys = list(model.state_dict())
    assert len(keys) == 122
    for key in [
        "conv1.weight", "bn1.num_batches_tracked", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
        "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean",
        "layer4.1.conv2.weight", "fc.weight", "fc.bias",
    ]:  # fmt: skip
        assert key in keys
    assert "layer1.0.downsample.0.weight" not in keys
    assert sum(p.numel() for p in model.parameters()) == 11_689_512


def test_resnet50_keys_and_params_match_torchvision() -> None:
    model = build_model(ModelSpec("resnet50", num_classes=1000))
    keys = list(model.state_dict())
    assert len(keys) == 320
    for key in [
        "layer1.0.conv1.weight", "layer1.0.downsample.0.weight", "layer2.0.downsample.0.weight",
        "layer3.5.conv3.weight", "layer4.2.bn3.running_var", "fc.bias",
    ]:  # fmt: skip
        assert key in keys
    assert tuple(model.state_dict()["layer2.0.conv2.weight"].shape) == (128, 128, 3, 3)
    assert sum(p.numel() for p in model.parameters()) == 25_557_032


def test_mobilenet_v2_imagenet_keys_params_and_macs_match_torchvision() -> None:
    """torchvision's mobilenet_v2 state dicts load as they are: 314 keys, 3,504,872
    parameters, 300.8M MACs at 224×224."""
    model = build_model(ModelSpec("mobilenet_v2_imagenet", num_classes=1000))
    keys = list(model.state_dict())
    assert len(keys) == 314
    for key in [
        "features.0.0.weight", "features.0.1.running_var", "features.1.conv.0.0.weight",
        "features.1.conv.1.weight", "features.1.conv.2.bias", "features.2.conv.0.0.weight",
        "features.2.conv.1.0.weight", "features.2.conv.2.weight", "features.2.conv.3.weight",
        "features.17.conv.3.num_batches_tracked", "features.18.0.weight", "classifier.1.weight",
    ]:  # fmt: skip
        assert key in keys
    assert tuple(model.state_dict()["features.2.conv.0.0.weight"].shape) == (96, 16, 1, 1)
    assert sum(p.numel() for p in model.parameters()) == 3_504_872
    assert count_model(model, (3, 224, 224)).flops == 300_774_272
    assert [u.conv for u in model.prunable_units()][:2] == [
        "features.2.conv.0.0",
        "features.3.conv.0.0",
    ]


def test_cifar_resnet_param_counts() -> None:
    # Option-A resnet20 has 269,722 parameters; option B adds two 1×1 convs + BNs (2,752).
    assert sum(p.numel() for p in build_model(ModelSpec("resnet20")).parameters()) == 272_474
    assert len(build_model(ModelSpec("resnet56")).prunable_units()) == 27


@pytest.mark.parametrize("arch", ALL)
def test_units_prune_with_the_dependency_graph(arch: str) -> None:
    model = tiny(arch).eval()
    assert isinstance(model, PrunableModel)
    units = model.prunable_units()
    modules = dict(model.named_modules())
    convs = {n: m.out_channels for n, m in modules.items() if isinstance(m, nn.Conv2d)}
    before = unit_widths(model, units)
    example = torch.randn(1, 3, 32, 32)
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
    for unit in units:
        group = graph.get_pruning_group(modules[unit.conv], tp.prune_conv_out_channels, idxs=[0, 1])
        group.prune()
    assert unit_widths(model, units) == [w - 2 for w in before]
    # Only unit convs (and depthwise convs that follow them) changed: residual widths are fixed.
    unit_convs = {u.conv for u in units}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.out_channels != convs[name]:
            assert name in unit_convs or module.groups == module.in_channels > 1, name
    with torch.no_grad():
        assert model(example).shape == (1, 10)
