"""The optimisation schedule every training protocol shares (kept torch-free: it is part of protocol configs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class TrainingConfig:
    """Adam for a number of steps, model selection on a validation metric, resumable checkpoints.

    Defaults are the Occupancy Networks schedule (the ``paper`` profile).
    """

    steps: int = 300_000  # optimiser steps
    batch_size: int = 64
    lr: float = 1e-4  # Adam
    validate_every: int = 10_000  # steps between validation checks (model selection)
    checkpoint_every: int = 1_000  # steps between resumable checkpoints
    workers: int = 0  # DataLoader workers


# The smoke profile's schedule for every training protocol: a few steps, checked twice.
SMOKE_SCHEDULE: dict[str, Any] = {"steps": 4, "batch_size": 4, "lr": 1e-3, "validate_every": 2, "checkpoint_every": 2}
