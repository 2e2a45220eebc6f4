"""The CPU kernel guard computes what the strided 1×1 convolution computes, restores the
model, and keeps a training step off oneDNN's faulty AVX2 kernel (docs/cpu-kernels.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import torch
import torch.nn.functional as F
from torch import nn

from pruning.cpu_kernels import guard_cpu_kernels, strided_pointwise_convs
from pruning.models.registry import ModelSpec, build_model

CPU = torch.device("cpu")


def test_only_unpadded_strided_pointwise_convs_are_guarded() -> None:
    model = nn.Sequential(
        nn.Conv2d(4, 8, 1, stride=2, bias=False),
        nn.Conv2d(8, 8, 1),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.Conv2d(8, 8, 1, stride=2, padding=1),
        nn.Conv2d(8, 8, 1, stride=(1, 2)),
    )
    assert strided_pointwise_convs(model) == [model[0], model[4]]


def test_guarded_forward_and_backward_equal_the_plain_ones_and_the_model_is_restored() -> None:
    torch.manual_seed(0)
    model = build_model(ModelSpec(arch="resnet20", in_channels=1, num_classes=4, width_mult=0.25))
    model = model.double().train()
    convs = strided_pointwise_convs(model)
    strides = [tuple(c.stride) for c in convs]
    assert strides and all(s == (2, 2) for s in strides)  # option-B shortcuts
    x = torch.randn(6, 1, 32, 32, dtype=torch.float64)
    y = torch.randint(0, 4, (6,))

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters()]  # type: ignore[union-attr]

    plain_loss, plain_grads = loss_and_grads()
    with guard_cpu_kernels(model, CPU):
        assert all(tuple(c.stride) == (1, 1) and c._forward_pre_hooks for c in convs)
        guarded_loss, guarded_grads = loss_and_grads()
    torch.testing.assert_close(guarded_loss, plain_loss)
    for a, b in zip(guarded_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b)
    assert [tuple(c.stride) for c in convs] == strides
    assert not any(c._forward_pre_hooks for c in convs)


def test_the_guard_does_nothing_off_the_cpu() -> None:
    conv = nn.Conv2d(4, 8, 1, stride=2)
    with guard_cpu_kernels(conv, torch.device("meta")):
        assert conv.stride == (2, 2) and not conv._forward_pre_hooks


CHILD = textwrap.dedent(
    """
    import torch, torch.nn.functional as F
    from torch import nn
    from pruning.cpu_kernels import guard_cpu_kernels
    torch.set_num_threads(2)
    torch.manual_seed(0)
    # Four channels in NHWC into a stride-2 1x1 conv: the shape that hangs (2 threads) or
    # crashes (1 thread) oneDNN's AVX2 weight-gradient kernel when unguarded.
    model = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1),
        nn.Conv2d(4, 8, 1, stride=2, bias=False),
        nn.Flatten(),
        nn.Linear(8 * 16 * 16, 3),
    )
    x = torch.randn(16, 4, 32, 32).to(memory_format=torch.channels_last)
    y = torch.randint(0, 3, (16,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with guard_cpu_kernels(model, torch.device("cpu")):
        for _ in range(30):
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    print("done")
    """
)


def test_a_guarded_training_loop_finishes_on_avx2_kernels() -> None:
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "done"
