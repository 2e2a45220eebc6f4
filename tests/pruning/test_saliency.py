"""Eq. (5)-(7): the Taylor criterion read from the gate's gradient, normalisation, EMA."""

from __future__ import annotations

import torch
from torch import nn

from pruning.network.units import UnitSpec
from pruning.structure.gates import UnitGates
from pruning.structure.saliency import normalise_per_unit, taylor_criterion, update_saliency


class TinyConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, kernel_size=1, bias=False)
        self.relu = nn.ReLU()
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -2.0, 0.5]).view(3, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


def test_gate_gradient_equals_hand_computed_eq5() -> None:
    model = TinyConv()
    gates = UnitGates(model, [UnitSpec("conv", "conv", "relu")], [3])
    x = torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]], [[[0.5, 3.0], [-2.0, 1.0]]]])  # N=2, 2×2
    coeff = torch.tensor([0.3, -1.5, 2.0])  # J = Σ_k c_k Σ_m (g·z)_{k,m}
    out = model(x)
    loss = (out * coeff.view(1, 3, 1, 1)).sum()
    loss.backward()

    # By hand: z = relu(w_k x); ∂J/∂(g·z) = c_k everywhere; M = N·H·W = 8.
    z = torch.relu(x * torch.tensor([1.0, -2.0, 0.5]).view(1, 3, 1, 1))
    expected = (z * coeff.view(1, 3, 1, 1)).sum(dim=(0, 2, 3)).abs() / 8
    assert gates.entries == [8]
    got = taylor_criterion(gates.gates[0].grad, gates.entries[0])
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(gates.normalised_scores()[0], expected / expected.max())


def test_inactive_channel_gets_a_reentry_score_and_no_output() -> None:
    model = TinyConv()
    gates = UnitGates(model, [UnitSpec("conv", "conv", "relu")], [3])
    gates.set_masks([torch.tensor([True, False, True])])
    x = torch.rand(2, 1, 2, 2) + 0.1  # positive, so channel 0 and 2 pass the ReLU
    model.conv.weight.data[1] = 1.0  # make the masked channel's z non-zero
    out = model(x)
    assert torch.all(out[:, 1] == 0)
    out.sum().backward()
    # For g = 0, ∂J/∂g = Σ z·∂J/∂(g·z) = Σ z > 0: the channel can come back.
    assert gates.gates[0].grad[1] > 0


def test_eq6_normalises_by_the_max_and_guards_zero() -> None:
    torch.testing.assert_close(
        normalise_per_unit(torch.tensor([1.0, 4.0, 2.0])), torch.tensor([0.25, 1.0, 0.5])
    )
    assert torch.equal(normalise_per_unit(torch.zeros(3)), torch.zeros(3))


def test_eq7_moving_average() -> None:
    f = torch.tensor([1.0, 0.0])
    update_saliency(f, torch.tensor([0.0, 1.0]), epsilon=0.98)
    torch.testing.assert_close(f, torch.tensor([0.98, 0.02]))
    update_saliency(f, torch.tensor([1.0, 1.0]), epsilon=0.98)
    torch.testing.assert_close(f, torch.tensor([0.98 * 0.98 + 0.02, 0.98 * 0.02 + 0.02]))
