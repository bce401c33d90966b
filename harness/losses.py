"""Task losses shared by every protocol that trains the task, alone or in a multi-task sum."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from harness.data import IGNORE_INDEX


def occupancy_loss(logits: torch.Tensor, occupancy: torch.Tensor) -> torch.Tensor:
    """Occupancy Networks: binary cross-entropy with logits summed over query points, averaged over the batch."""
    return F.binary_cross_entropy_with_logits(logits, occupancy, reduction="none").sum(-1).mean()


def part_loss(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy over labelled points ([B, M, C] logits, [B, M] labels; IGNORE_INDEX is skipped); with a
    class ``weight`` [C], the weighted mean (each point's term times its class's weight, over the weights' sum).

    A batch with no labelled point gives 0, not NaN.
    """
    labels = labels.flatten()
    total = F.cross_entropy(logits.flatten(0, 1), labels, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum")
    labelled = labels[labels != IGNORE_INDEX]
    if weight is None:
        return total / max(labelled.numel(), 1)
    return total / weight[labelled].sum().clamp(min=1e-12)


def inverse_log_frequency(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """Class weights 1 / ln(1.2 + f_c) from the frequencies f_c of the labels (IGNORE_INDEX left out), as PointNet++
    weights ScanNet's classes: a rare class counts up to 5.5 times a frequent one, not the thousands of times inverse
    frequencies would give (a class that never occurs gets the largest weight, 1 / ln 1.2)."""
    labels = labels[labels != IGNORE_INDEX]
    frequency = torch.bincount(labels, minlength=classes).double() / max(labels.numel(), 1)
    return (1.0 / torch.log(1.2 + frequency)).float()


def class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


def udf_loss(pred: torch.Tensor, target: torch.Tensor, clamp: float = 0.1) -> torch.Tensor:
    """NDF's unsigned distance loss (Chibane et al. 2020; the contextualising paper, Sec. 3.2): L1 between the
    predicted and true distances [B, M], both clamped at ``clamp`` (0.1: far-field errors do not count),
    summed over the query points and averaged over the batch."""
    return (pred.clamp(max=clamp) - target.clamp(max=clamp)).abs().sum(-1).mean()


# The scene semantic loss is the standard cross-entropy over labelled points ([B, M, C] logits, [B, M] labels,
# IGNORE_INDEX skipped), exactly what part_loss computes: one implementation.
semantic_loss = part_loss


class UncertaintyWeighting(nn.Module):
    """Learned uncertainty weighting of task losses (Kendall, Gal and Cipolla, CVPR 2018), as RangeUDF and the
    contextualising paper (Sec. 3.2) use for joint reconstruction + semantics::

        total = sum_i exp(-s_i) * L_i + s_i        s_i = log sigma_i^2, learnable, initialised at 0

    For a fixed L_i > 0 the total is minimised at s_i = log L_i (weight exp(-s_i) = 1 / L_i). ``tasks``: the
    number of losses or their names; ``forward`` takes the losses as a sequence (in order) or a mapping by
    name. ``weights()`` gives the current exp(-s_i). Its parameters belong in the optimiser with the model's.
    """

    def __init__(self, tasks: int | Sequence[str]) -> None:
        super().__init__()
        self.names = [str(t) for t in range(tasks)] if isinstance(tasks, int) else [str(t) for t in tasks]
        if not self.names:
            raise ValueError("UncertaintyWeighting needs at least one task")
        self.log_vars = nn.Parameter(torch.zeros(len(self.names)))

    def forward(self, losses: Sequence[torch.Tensor] | Mapping[str, torch.Tensor]) -> torch.Tensor:
        if isinstance(losses, Mapping):
            missing = sorted(set(self.names) - set(losses))
            if missing or len(losses) != len(self.names):
                raise ValueError(f"UncertaintyWeighting: expected losses for {self.names}, got {sorted(losses)}")
            losses = [losses[name] for name in self.names]
        if len(losses) != len(self.names):
            raise ValueError(f"UncertaintyWeighting: expected {len(self.names)} losses, got {len(losses)}")
        stacked = torch.stack([torch.as_tensor(loss).reshape(()) for loss in losses]).to(self.log_vars.dtype)
        return (torch.exp(-self.log_vars) * stacked + self.log_vars).sum()

    def weights(self) -> dict[str, float]:
        return {name: float(w) for name, w in zip(self.names, torch.exp(-self.log_vars.detach()))}
