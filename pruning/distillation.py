"""Knowledge distillation for weight learning: the compact network also learns the
original network's softened outputs (Hinton et al., 2015).

The checkpoint a user sends is a trained network of the same task, so its class
probabilities carry more than the label (which wrong classes are close); with few epochs
of weight learning this is the cheapest signal there is to recover what channel removal
cost. bench/RESULTS.md measures it against plain cross-entropy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Distillation:
    """`weight` of the teacher's term in the loss (1 − weight stays on the labels) and the
    softmax `temperature` both distributions are taken at."""

    teacher: nn.Module
    weight: float
    temperature: float

    @classmethod
    def frozen_copy(cls, model: nn.Module, weight: float, temperature: float) -> Distillation:
        """A copy of `model` as it is now, in eval mode (its BatchNorm running statistics,
        not the batch's) and without gradients."""
        teacher = copy.deepcopy(model).eval()
        for parameter in teacher.parameters():
            parameter.requires_grad_(False)
        return cls(teacher, weight, temperature)

    @torch.no_grad()
    def teacher_logits(self, x: Tensor) -> Tensor:
        return self.teacher(x)

    def loss(self, student_logits: Tensor, teacher_logits: Tensor, labels: Tensor) -> Tensor:
        """(1 − w)·CE(student, labels) + w·T²·KL(teacher_T ‖ student_T); T² keeps the soft
        term's gradients on the scale of the hard one's as T grows."""
        hard = F.cross_entropy(student_logits, labels)
        if self.weight == 0.0:
            return hard
        t = self.temperature
        soft = F.kl_div(
            F.log_softmax(student_logits / t, dim=1),
            F.log_softmax(teacher_logits.float() / t, dim=1),
            reduction="batchmean",
            log_target=True,
        )
        return (1.0 - self.weight) * hard + self.weight * (t * t) * soft
