"""The shape of a single-task protocol (classification, reconstruction, segmentation): build the model,
train it (once per recipe, see :mod:`harness.trained`), score it cheaply, evaluate it fully.

The compression and quantisation protocols drive a task's protocol through this interface, so a
compressed model is trained, selected and scored exactly as its uncompressed baseline.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from harness.metrics.directions import metric
from harness.runner import RunContext
from harness.specs import Kind
from harness.store import Metric
from harness.trained import recipe, train_once

# decoder task -> the protocol that trains and scores it
TASK_PROTOCOLS = {"classification": "classification", "occupancy": "reconstruction", "segmentation": "segmentation"}


class TaskProtocol:
    name = ""  # its registry name: the trainer of its recipes
    selection = ""  # the metric it selects models on (higher is better) and ``score`` returns

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

    # ----- shared --------------------------------------------------------------------------------
    def recipe(self, ctx: RunContext) -> dict[str, Any]:
        """What decides the weights this protocol trains for the run's encoder and decoder."""
        parts = {role: (ctx.specs[role], ctx.config(role)) for role in ("encoder", "decoder")}
        return recipe(ctx, self.name, self.config, parts)

    def trained_model(self, ctx: RunContext) -> tuple[nn.Module, float]:
        """The run's model with trained weights (reused when this recipe was trained before) and its best
        validation score."""
        model = self.build_model(ctx)
        best = train_once(ctx, model, self.recipe(ctx), ctx.run_dir, lambda directory: self.train(model, ctx, directory))
        return model, best

    def run(self, ctx: RunContext) -> list[Metric]:
        model, best = self.trained_model(ctx)
        return ([metric("val", self.selection, best)] + self.evaluate(model, ctx)
                + [metric("test", "parameters", sum(p.numel() for p in model.parameters()))])


def task_protocol(ctx: RunContext) -> TaskProtocol:
    """The protocol of the run's decoder task, with its defaults and this run's profile."""
    task = ctx.specs["decoder"].capabilities.task
    if task not in TASK_PROTOCOLS:
        raise ValueError(f"decoder {ctx.specs['decoder'].name} is for {task}; a baseline can be trained for "
                         f"{', '.join(TASK_PROTOCOLS)}")
    return ctx.build_named(Kind.PROTOCOL, TASK_PROTOCOLS[task])
