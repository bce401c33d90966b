"""The optimisation schedule every training protocol shares (kept torch-free: it is part of protocol configs)."""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from harness.config_checks import FieldError, require_choice, require_non_negative, require_positive


SCHEDULES = ("constant", "cosine")


@dataclass
class TrainingConfig:
    """Adam for a number of steps, model selection on a validation metric, resumable checkpoints.

    Defaults are the Occupancy Networks schedule (the ``paper`` profile): a constant learning rate. Short
    schedules (the ``quick`` profile) learn far more per step with a linear warm-up and a cosine decay to 0
    (see :func:`learning_rate`).
    """

    steps: int = 300_000  # optimiser steps
    # > 0: train for at least this many passes over the training split too (as classification papers state their
    # schedules), so one profile gives a large dataset more steps than a small one; see schedule_steps
    epochs: float = 0.0
    batch_size: int = 64
    lr: float = 1e-4  # Adam's peak learning rate
    schedule: str = "constant"  # one of SCHEDULES: how the learning rate moves after the warm-up
    warmup_steps: int = 0  # linear warm-up from lr / warmup_steps to lr over these first steps
    weight_decay: float = 0.0  # decoupled weight decay (AdamW); 0 is plain Adam
    validate_every: int = 10_000  # steps between validation checks (model selection)
    checkpoint_every: int = 1_000  # steps between resumable checkpoints
    workers: int = 0  # DataLoader workers
    # True in a protocol config where steps=0 and epochs=0 validly mean "do not train" (e.g. an optional
    # fine-tuning); a class attribute, not a field, so no part of the config a run's identity hashes
    may_skip_training: ClassVar[bool] = False

    def __post_init__(self) -> None:
        # a profile or override may give whole epochs as an int; the recipes that key shared trained weights hash
        # this config, and must not tell 10 from 10.0 (the same schedule trained twice)
        self.epochs = float(self.epochs)
        # refused when the config is built, before a run is recorded, rather than steps into its training
        require_positive(self, "batch_size", "lr", "validate_every", "checkpoint_every")
        require_non_negative(self, "steps", "epochs", "warmup_steps", "weight_decay", "workers")
        require_choice(self, "schedule", SCHEDULES)
        if self.steps == 0 and self.epochs == 0 and not self.may_skip_training:
            raise FieldError("steps", self.steps, "must be > 0 unless epochs > 0 (no steps trains nothing)")


# The smoke profile's schedule for every training protocol: a few steps, checked twice.
SMOKE_SCHEDULE: dict[str, Any] = {"steps": 4, "batch_size": 4, "lr": 1e-3, "validate_every": 2, "checkpoint_every": 2}


def schedule_steps(config: TrainingConfig, train_items: int) -> int:
    """The optimiser steps of a schedule: ``steps``, or with ``epochs`` the steps of that many passes over
    ``train_items`` in batches of ``batch_size`` where they are more (the last partial batch of a pass is dropped, as
    :func:`harness.training.fit` drops it)."""
    if config.epochs <= 0:
        return config.steps
    return max(config.steps, math.ceil(config.epochs * max(train_items // config.batch_size, 1)))


def schedule_fields(config: TrainingConfig) -> dict[str, Any]:
    """The values of every :class:`TrainingConfig` field of ``config`` (a protocol config deriving from it): what
    of a protocol's config decides the weights it trains (recipes) or is handed to another's training."""
    return {f.name: getattr(config, f.name) for f in fields(TrainingConfig)}


def learning_rate(config: TrainingConfig, step: int) -> float:
    """The learning rate of optimiser step ``step`` (0-based): a pure function of the step, so a resumed run
    continues on exactly the same schedule. ``cosine`` decays from ``lr`` after the warm-up to 0 at the
    last step (Loshchilov & Hutter's SGDR without restarts); ``config.schedule`` was checked when it was built."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return config.lr
    decay_steps = max(config.steps - config.warmup_steps, 1)
    progress = min((step - config.warmup_steps) / decay_steps, 1.0)
    return 0.5 * config.lr * (1.0 + math.cos(math.pi * progress))
