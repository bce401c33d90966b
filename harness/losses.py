"""Task losses shared by every protocol that trains the task, alone or in a multi-task sum."""
from __future__ import annotations

import torch
from torch.nn import functional as F

from harness.data import IGNORE_INDEX


def occupancy_loss(logits: torch.Tensor, occupancy: torch.Tensor) -> torch.Tensor:
    """Occupancy Networks: binary cross-entropy with logits summed over query points, averaged over the batch."""
    return F.binary_cross_entropy_with_logits(logits, occupancy, reduction="none").sum(-1).mean()


def part_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over labelled points ([B, M, C] logits, [B, M] labels; IGNORE_INDEX is skipped).

    A batch with no labelled point gives 0, not NaN.
    """
    total = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
    return total / (labels != IGNORE_INDEX).sum().clamp(min=1)


def class_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels)
