"""Feature saliency: the Taylor criterion (eq. 5), its normalisation (eq. 6) and the moving
average (eq. 7) of Qi et al. 2021."""

from __future__ import annotations

import torch
from torch import Tensor


def taylor_criterion(gate_grad: Tensor, entries_per_channel: int) -> Tensor:
    """Eq. (5): Θ_k = |(1/M) Σ_m z_{k,m} ∂J/∂(g·z)_{k,m}|.

    The gate multiplies the feature map, so autograd's gradient of the gate is exactly
    Σ_m z_{k,m} ∂J/∂(g·z)_{k,m}: reading it gives the criterion without storing activations.
    `entries_per_channel` is M = N·H·W of the gated tensor.
    """
    if entries_per_channel <= 0:
        raise ValueError("entries_per_channel must be positive")
    return gate_grad.detach().abs() / float(entries_per_channel)


def normalise_per_unit(theta: Tensor) -> Tensor:
    """Eq. (6): Θ̂ = Θ / max_k Θ_k; an all-zero unit stays zero instead of dividing by zero.

    Θ ≥ 0, so an all-zero unit has peak 0 and dividing by the smallest positive float keeps
    it at 0: no branch on the peak's value, hence no wait for the GPU per unit and step."""
    peak = theta.max().clamp_min(torch.finfo(theta.dtype).tiny)
    return theta / peak


def update_saliency(saliency: Tensor, theta_hat: Tensor, epsilon: float) -> Tensor:
    """Eq. (7): f ← ε·f + (1 − ε)·Θ̂, in place; returns `saliency`."""
    saliency.mul_(epsilon).add_(theta_hat, alpha=1.0 - epsilon)
    return saliency
