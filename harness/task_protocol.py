"""The shape of a single-task protocol (classification, reconstruction, segmentation): build the model,
train it (once per recipe, see :mod:`harness.trained`), score it cheaply, evaluate it fully.

The compression and quantisation protocols drive a task's protocol through this interface, so a
compressed model is trained, selected and scored exactly as its uncompressed baseline. Trivial floors (see
:mod:`harness.floors`) go through it too: a task's trivial models are scored by its own ``score`` and
``evaluate``, so a floor is computed exactly as the figure it stands beside.
"""
from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from harness.floors import FLOOR_SPLIT, best_per_metric, cached_for_run, metrics_from_json, metrics_to_json
from harness.metrics.directions import direction, metric
from harness.runner import RunContext, RunSetup
from harness.specs import ComponentSpec, Kind
from harness.split_checks import SplitKeys, check_splits
from harness.store import Metric
from harness.trained import recipe, train_once

# decoder task -> the protocol that trains and scores it
TASK_PROTOCOLS = {"classification": "classification", "occupancy": "reconstruction", "segmentation": "segmentation"}


@dataclass(frozen=True)
class TaskFloors:
    """A task's trivial floors: of its test metrics (split ``floor``, named as ``evaluate`` names them) and of its
    cheap ``score`` on the test split (what compression and quantisation record)."""

    metrics: list[Metric]
    score: float

    def to_json(self) -> dict[str, Any]:
        return {"metrics": metrics_to_json(self.metrics), "score": self.score}

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> TaskFloors:
        return cls(metrics_from_json(payload["metrics"]), float(payload["score"]))


class TaskProtocol:
    name = ""  # its registry name: the trainer of its recipes
    selection = ""  # the metric it selects models on (higher is better) and ``score`` returns
    floor_fields: tuple[str, ...] = ()  # the config fields its test figures depend on (evaluation settings)

    def __init__(self, config: Any) -> None:
        self.config = config

    # ----- what each task defines ----------------------------------------------------------------
    def build_model(self, ctx: RunContext) -> nn.Module:
        """The run's encoder and decoder, wrapped as this task's model, on the run's device."""
        raise NotImplementedError

    def train(self, model: nn.Module, ctx: RunContext, directory: Path) -> float:
        """Fit ``model`` (checkpoints under ``directory``); the best validation score."""
        raise NotImplementedError

    def score(self, model: nn.Module, ctx: RunContext, split: str) -> float:
        """The selection metric on ``split``: cheap, for model selection and before/after comparisons."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, ctx: RunContext) -> list[Metric]:
        """Every test metric, overall and per class."""
        raise NotImplementedError

    def trivial_models(self, ctx: RunContext) -> list[nn.Module]:
        """Models that ignore their input, built from the training split alone (e.g. one predicting the majority
        class), which ``score`` and ``evaluate`` accept like the task's model; each figure's floor is the best
        one of them gets."""
        raise NotImplementedError

    def split_keys(self, ctx: RunContext) -> SplitKeys:
        """The sample keys it reads of each split's items, training, selection, evaluation and floors together
        (the run's data is checked against them before anything trains). By default only that train, val and test
        are non-empty, so a task written before this check still runs."""
        return {split: () for split in ("train", "val", "test")}

    # ----- shared --------------------------------------------------------------------------------
    def check_data(self, ctx: RunContext, protocol: str = "") -> None:
        """Stop before training if a split this task reads is empty or lacks a key it reads (``protocol``: the
        run's protocol named in the error, when it is not this task's, e.g. compression)."""
        check_splits(ctx.dataset, self.split_keys(ctx), protocol or self.name)

    def floors(self, ctx: RunContext) -> TaskFloors:
        """The trivial floors of the run's dataset under this protocol's evaluation settings (cached)."""
        setting = {name: getattr(self.config, name) for name in self.floor_fields}
        return cached_for_run(ctx, self.name, setting, lambda: self._trivial_floors(ctx).to_json(),
                              TaskFloors.from_json)

    def _trivial_floors(self, ctx: RunContext) -> TaskFloors:
        """Every trivial model scored by this protocol's own ``evaluate`` and ``score`` (under seed 0, writing
        nothing into the run's folder); the best figure of each metric."""
        figures, scores = [], []
        with tempfile.TemporaryDirectory() as scratch:
            scoring = dataclasses.replace(ctx, run_dir=Path(scratch), seed=0)
            for model in self.trivial_models(ctx):
                figures.append({(m.name, m.class_name): m.value for m in self.evaluate(model, scoring)})
                scores.append(self.score(model, scoring, "test"))
        best = best_per_metric(figures, direction)
        order = sorted(best, key=lambda key: (key[0], key[1] or ""))
        return TaskFloors([metric(FLOOR_SPLIT, name, best[name, class_name], class_name) for name, class_name in order],
                          max(scores))

    def recipe(self, ctx: RunContext, decoder: tuple[ComponentSpec, Any] | None = None) -> dict[str, Any]:
        """What decides the weights this protocol trains for the run's encoder and decoder (``decoder``: the spec
        and config of a head the run picks itself, e.g. a hold-out's ONet decoder, where it has no decoder role)."""
        parts = {"encoder": (ctx.specs["encoder"], ctx.config("encoder")),
                 "decoder": decoder if decoder is not None else (ctx.specs["decoder"], ctx.config("decoder"))}
        return recipe(ctx, self.name, self.config, parts)

    def trained_model(self, ctx: RunContext) -> tuple[nn.Module, float]:
        """The run's model with trained weights (reused when this recipe was trained before) and its best
        validation score."""
        model = self.build_model(ctx)
        best = train_once(ctx, model, self.recipe(ctx), ctx.run_dir, lambda directory: self.train(model, ctx, directory))
        return model, best

    def run(self, ctx: RunContext) -> list[Metric]:
        self.check_data(ctx)
        model, best = self.trained_model(ctx)
        return ([metric("val", self.selection, best)] + self.evaluate(model, ctx)
                + [metric("test", "parameters", sum(p.numel() for p in model.parameters()))]
                + self.floors(ctx).metrics)


def task_protocol_name(setup: RunSetup) -> str:
    """The protocol that trains the run's decoder task (a ValueError naming the decoder where none does)."""
    task = setup.specs["decoder"].capabilities.task
    if task not in TASK_PROTOCOLS:
        raise ValueError(f"decoder {setup.specs['decoder'].name} is for {task}; a baseline can be trained for "
                         f"{', '.join(TASK_PROTOCOLS)}")
    return TASK_PROTOCOLS[task]


def task_protocol(ctx: RunContext) -> TaskProtocol:
    """The protocol of the run's decoder task, with its defaults and this run's profile."""
    return ctx.build_named(Kind.PROTOCOL, task_protocol_name(ctx))
