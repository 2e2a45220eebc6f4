"""Prunable units discovered from the dependency graph, for networks outside the zoo and for
the zoo itself (whose hand-written lists are the reference)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from edgeprune_test_models import BUILDERS
from torch import nn

from pruning.checkpoints import load_model
from pruning.config import CompressConfig, Target
from pruning.export.narrow_layers import MIN_INT8_MACS, name_nodes, narrow_nodes, widen_for_int8
from pruning.export.onnx import export_onnx
from pruning.export.onnx_cost import onnx_macs
from pruning.models.registry import (
    ModelSpec,
    UnknownArchitecture,
    available_models,
    build_model,
    installed_architectures,
)
from pruning.network.dependency import DependencyAdapter
from pruning.network.discovery import NoPrunableUnits, discover_units, removal_mismatch
from pruning.network.units import PrunableModel, UnitSpec, unit_widths
from pruning.pipeline import CompressRequest, run_compression
from pruning.structure.gates import UnitGates

# Units discovery finds beyond the zoo's hand-written lists: channels no residual addition
# ties, which the zoo leaves whole (docs/custom-models.md explains each).
EXTRA_UNITS = {
    "mobilenet": ["conv1"],
    "mobilenet_v2": ["conv1", "features.0.project", "features.16.project", "conv_last"],
    "mobilenet_v2_imagenet": ["features.17.conv.2", "features.18.0"],
    "resnet50": ["conv1"],
}
PLUGIN = "tests/model_plugin/edgeprune_test_models/__init__.py"


def _zoo_spec(arch: str) -> ModelSpec:
    narrow = 0.5 if arch in ("resnet20", "resnet32", "resnet56", "resnet110") else 0.25
    return ModelSpec(arch=arch, in_channels=3, num_classes=10, width_mult=narrow)


@pytest.mark.parametrize("arch", available_models())
def test_discovery_on_the_zoo_finds_its_units_and_the_listed_extras(arch: str) -> None:
    model = build_model(_zoo_spec(arch))
    assert isinstance(model, PrunableModel)
    declared = [u.conv for u in model.prunable_units()]
    found = [u.conv for u in discover_units(model, torch.randn(1, 3, 32, 32)).units]
    assert [c for c in found if c in declared] == declared
    assert [c for c in found if c not in declared] == EXTRA_UNITS.get(arch, [])


@pytest.mark.parametrize(
    "arch", ["vgg11", "resnet20", "mobilenet", "mobilenet_v2", "mobilenet_v2_imagenet", "resnet50"]
)
def test_discovered_gates_mask_exactly_like_the_zoo_gates(arch: str) -> None:
    """Same masks, hand-written gate positions (hooks at gate_at) vs discovered ones (folded
    into the readers): the same function, with random BN statistics."""
    torch.manual_seed(0)
    model = build_model(_zoo_spec(arch)).double().eval()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            nn.init.normal_(module.weight)
            nn.init.normal_(module.bias)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    assert isinstance(model, PrunableModel)
    declared = model.prunable_units()
    discovered = {u.conv: u for u in discover_units(model, x[:1]).units}
    widths = unit_widths(model, declared)
    masks = [torch.rand(w) < 0.5 for w in widths]
    outputs = []
    for units, readers in ((declared, None), ([discovered[u.conv] for u in declared], True)):
        consumers = DependencyAdapter(model, x[:1], units).consumers() if readers else None
        gates = UnitGates(model, units, widths, consumers)
        gates.set_masks(masks)
        with torch.no_grad():
            outputs.append(model(x))
        gates.remove()
    assert torch.allclose(outputs[0], outputs[1], rtol=1e-9, atol=1e-9)


def test_discovery_keeps_what_it_cannot_prune_and_says_why() -> None:
    x = torch.randn(1, 3, 16, 16)
    grouped = discover_units(BUILDERS["grouped_cnn"](), x)
    assert {k.conv: k.reason for k in grouped.kept} == {
        "conv2.0": "it is tied to grouped conv group3.0 (groups=4)",
        "group3.0": "it is tied to grouped conv group3.0 (groups=4)",
    }
    squeeze = discover_units(BUILDERS["squeezenet_fire"](), x)
    assert [k.conv for k in squeeze.kept] == ["classifier"]  # its outputs are the logits
    shuffle = discover_units(BUILDERS["shufflenet_unit"](), x)
    assert [u.conv for u in shuffle.units] == ["units.0.pw1.0", "units.1.pw1.0", "head.0"]
    se = discover_units(BUILDERS["se_resnet"](), x)
    assert "layer2.conv2.0" in {k.conv for k in se.kept}  # residual-tied: the paper's policy
    coupled = discover_units(BUILDERS["se_resnet"](), x, residual="coupled")
    assert "layer2.conv2.0" in {u.conv for u in coupled.units}
    assert removal_mismatch(BUILDERS["se_resnet"](), x, coupled.units) < 1e-9
    named = discover_units(BUILDERS["se_resnet"](), x, ignore=["layer1"])
    assert not any(u.conv.startswith("layer1.") for u in named.units)


def test_a_model_without_prunable_convs_is_one_clear_error() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())  # its conv is the output
    with pytest.raises(NoPrunableUnits, match="no prunable conv found in Sequential"):
        discover_units(model, torch.randn(1, 3, 8, 8))


def _task(path: Path, classes: int = 3, n: int = 90, size: int = 16) -> None:
    rng = np.random.default_rng(0)
    y = np.arange(n) % classes
    x = rng.integers(0, 60, size=(n, size, size, 3), dtype=np.uint8)
    for label in range(classes):  # a learnable signal: a bright band per class
        x[y == label, 4 * label : 4 * label + 4, :, label] = 220
    np.savez(path, x=x, y=y)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_custom_architecture_compresses_end_to_end(name: str, tmp_path: Path) -> None:
    """flops=0.5 on six networks outside the zoo: the reduction holds on the exported ONNX
    graph, the masked ≡ pruned self-check and ONNX parity pass, the pruned structure rebuilds."""
    _task(tmp_path / "task.npz")
    builder = BUILDERS[name].__name__
    request = CompressRequest(
        arch=f"{PLUGIN}:{builder}",
        data=str(tmp_path / "task.npz"),
        config=CompressConfig(
            target=Target("flops", 0.5),
            structure_epochs=1,
            finetune_epochs=1,
            batch_size=32,
            calibration_batches=2,
            augment=False,
            device="cpu",
        ),
    )
    result = run_compression(request, tmp_path / "out")
    out = tmp_path / "out"
    # The reduction on ONNX graphs of the two structures as they are; the published files
    # may also carry zero channels that put depthwise convs on onnxruntime's fast kernels.
    rebuilt, spec, _ = load_model(out / "pruned.pt")  # full network built, then shrunk
    original = build_model(replace(spec, widths=None, unit_convs=None))
    narrow = {"model": rebuilt, "baseline": original}
    for name, network in narrow.items():
        export_onnx(network, (3, 16, 16), tmp_path / f"{name}.onnx", widen=False)
    reduction = 1 - onnx_macs(tmp_path / "model.onnx") / onnx_macs(tmp_path / "baseline.onnx")
    assert abs(reduction - 0.5) <= 0.01
    assert onnx_macs(out / "model.onnx") >= onnx_macs(tmp_path / "model.onnx")
    checks = result.report["checks"]
    assert checks["masked_vs_pruned_max_abs_diff"] <= 1e-4
    assert checks["onnx_vs_torch_max_abs_diff"] <= 1e-4
    structure = ModelSpec.from_json(json.loads((out / "structure.json").read_text()))
    assert structure.unit_convs is not None and structure.input_hw == (16, 16)
    assert spec == structure
    units = [UnitSpec(c, c) for c in structure.unit_convs]
    assert tuple(unit_widths(rebuilt, units)) == structure.widths
    assert rebuilt(torch.randn(2, 3, 16, 16)).shape == (2, 3)
    # INT8's zero padding changes no output, whatever the graph around the padded convs.
    published = onnx.load(str(out / "model.onnx"))
    name_nodes(published)
    padded = onnx.load(str(out / "model.onnx"))
    name_nodes(padded)
    # (Here it pads the grouped CNN's and the SE-ResNet's narrow convs; the others stay.)
    widen_for_int8(padded, skip=narrow_nodes(padded, MIN_INT8_MACS))
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(_logits(padded, x), _logits(published, x), rtol=1e-4, atol=1e-4)


def _logits(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": x})[0])


def test_installed_architectures_come_from_entry_points() -> None:
    installed = installed_architectures()
    assert {*BUILDERS, "broken_net"} <= set(installed)
    model = build_model(ModelSpec(arch="se_resnet", in_channels=1, num_classes=5))
    assert model(torch.randn(2, 1, 16, 16)).shape == (2, 5)
    with pytest.raises(UnknownArchitecture, match="installed but fails to import"):
        build_model(ModelSpec(arch="broken_net"))
    with pytest.raises(UnknownArchitecture, match=r"known: .*se_resnet.*vgg11"):
        build_model(ModelSpec(arch="no_such_net"))
    with pytest.raises(UnknownArchitecture, match="import strings are not accepted"):
        build_model(ModelSpec(arch=f"{PLUGIN}:build_grouped"), allow_import=False)


def test_bad_import_strings_are_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "nets.py").write_text(
        "import torch\n"
        "def fails(*, num_classes, in_channels):\n    raise RuntimeError('out of ideas')\n"
        "def not_a_module(*, num_classes, in_channels):\n    return 42\n"
        "def wrong_arguments(width):\n    return torch.nn.Identity()\n"
    )
    cases = {
        "no_such_module_xyz:build": "cannot import no_such_module_xyz: ModuleNotFoundError",
        f"{tmp_path}/missing.py:build": "no such file",
        f"{tmp_path}/nets.py:absent": "has no callable 'absent'",
        f"{tmp_path}/nets.py:fails": "failed to build: RuntimeError: out of ideas",
        f"{tmp_path}/nets.py:not_a_module": "returned int, not a torch nn.Module",
        f"{tmp_path}/nets.py:wrong_arguments": "must accept keyword arguments num_classes",
    }
    for target, message in cases.items():
        with pytest.raises(UnknownArchitecture, match=message):
            build_model(ModelSpec(arch=target))
