"""Mixed precision: what "auto" resolves to, and runs in bf16/fp16 that still meet the target."""

from __future__ import annotations

import pytest
import torch

from pruning.config import CompressConfig, Target
from pruning.engine import compress_model
from pruning.network.dependency import DependencyAdapter
from pruning.network.metrics import count_model
from pruning.network.units import unit_widths
from pruning.precision import memory_format, plan
from pruning.structure.gates import UnitGates
from tests.pruning.engine_helpers import random_task, tiny_model, tiny_spec


def test_auto_is_fp32_on_the_cpu_and_explicit_choices_are_kept() -> None:
    cpu = torch.device("cpu")
    assert plan("auto", cpu).name == "fp32" and not plan("auto", cpu).scaled
    assert plan("bf16", cpu).dtype == torch.bfloat16 and not plan("bf16", cpu).scaled
    assert plan("fp16", cpu).dtype == torch.float16 and plan("fp16", cpu).scaled
    with pytest.raises(ValueError, match="precision must be"):
        CompressConfig(target=Target("flops", 0.5), precision="fp8")  # type: ignore[arg-type]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_mixed_precision_run_meets_the_target_and_records_what_it_used(
    precision: str,
) -> None:
    config = CompressConfig(
        target=Target("flops", 0.5), structure_epochs=2, finetune_epochs=1, batch_size=16,
        calibration_batches=2, device="cpu", precision=precision,  # type: ignore[arg-type]
    )  # fmt: skip
    model = tiny_model("vgg11")
    full = count_model(model, (1, 32, 32)).flops
    seen: set[torch.dtype] = set()
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    hook = first_conv.register_forward_hook(
        lambda m, i, out: seen.add(out.dtype) if m.training else None
    )
    result = compress_model(model, tiny_spec("vgg11"), random_task(), config)
    hook.remove()
    assert {"bf16": torch.bfloat16, "fp16": torch.float16}[precision] in seen  # autocast ran
    assert result.runtime["device"] == "cpu" and result.runtime["precision"] == precision
    assert result.runtime["data_workers"] == "0"  # in-memory tensors on the CPU
    reduction = 1 - count_model(result.model, (1, 32, 32)).flops / full
    assert abs(reduction - 0.5) <= 0.01
    assert result.self_check_max_abs_diff <= 1e-4  # removal is checked in fp32, eval mode
    structure = [h for h in result.history if h["phase"] == "structure_learning"]
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in structure)


def test_channels_last_is_for_cuda_and_the_gates_read_the_same_gradients_in_it() -> None:
    assert memory_format(torch.device("cuda")) == torch.channels_last
    assert memory_format(torch.device("cpu")) == torch.contiguous_format
    # On a GPU the engine trains in NHWC: the gates' gradients (eq. 5) must not depend on it.
    # Checked here on the CPU with a network that has no strided 1×1 convolution.
    grads = []
    for layout in (torch.contiguous_format, torch.channels_last):
        model = tiny_model("vgg11")
        model.to(memory_format=layout)  # type: ignore[call-overload]
        units = model.prunable_units()  # type: ignore[operator]
        widths = unit_widths(model, units)
        example = torch.randn(1, 1, 32, 32)
        model.eval()
        adapter = DependencyAdapter(model, example, units)
        gates = UnitGates(model, units, widths, adapter.consumers())
        torch.manual_seed(0)
        x = torch.randn(8, 1, 32, 32).to(memory_format=layout)
        y = torch.randint(0, 4, (8,))
        model.train()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        grads.append([g.grad.clone() for g in gates.gates])  # type: ignore[union-attr]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
