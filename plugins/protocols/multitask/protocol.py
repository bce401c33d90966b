"""The multi-task protocol: one encoder, a head per task, the weighted loss sum, every task's metrics.

Each task is evaluated by its own protocol's code on a view of the shared model (encoder + that
task's head), so the multi-task figures are computed exactly like the single-task ones.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn

from harness.data import LABEL, OCCUPANCY, PART, QUERY
from harness.implicit import ImplicitNetwork
from harness.losses import class_loss, occupancy_loss, part_loss
from harness.metrics.directions import metric
from harness.runner import RunContext
from harness.specs import TASK_TARGETS, Kind
from harness.split_checks import SplitKeys, check_splits, merge_split_keys
from harness.store import Metric
from harness.task_protocol import TaskProtocol
from harness.trained import recipe, train_once
from harness.training import fit

from ..classification.protocol import ClassificationProtocol, EncoderClassifier
from ..reconstruction.protocol import ReconstructionProtocol
from ..segmentation.protocol import SegmentationProtocol
from . import TASKS, MultitaskConfig, TaskHeadsConfig

# Each task's own protocol scores it; model selection follows the first task of the list.
SCORERS: dict[str, type[TaskProtocol]] = {
    "occupancy": ReconstructionProtocol, "classification": ClassificationProtocol,
    "segmentation": SegmentationProtocol}


# what each task's loss reads of a training batch (``MultitaskModel.losses``), besides the encoder's input
LOSS_KEYS = {"classification": (LABEL,), "occupancy": (QUERY, OCCUPANCY), "segmentation": (QUERY, PART)}


class Channels(nn.Module):
    """A view of some output channels of a per-point decoder (slicing the joint decoder)."""

    def __init__(self, decoder: nn.Module, channels: slice | int) -> None:
        super().__init__()
        self.decoder, self.channels = decoder, channels

    def forward(self, query: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return self.decoder(query, code)[..., self.channels]


class MultitaskModel(nn.Module):
    """One encoder and a head per task; ``view(task)`` is the single-task model its protocol evaluates."""

    def __init__(self, encoder: nn.Module, heads: dict[str, nn.Module], input_key: str) -> None:
        super().__init__()
        self.encoder, self.heads, self.input_key = encoder, nn.ModuleDict(heads), input_key

    def view(self, task: str) -> nn.Module:
        if task == "classification":
            return EncoderClassifier(self.encoder, self.heads[task], self.input_key)
        return ImplicitNetwork(self.encoder, self.heads[task], self.input_key)

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        code = self.encoder(batch[self.input_key])
        joint = self.heads["joint"] if "joint" in self.heads else None
        per_point = joint(batch[QUERY], code) if joint is not None else None
        losses = {}
        for task in self.heads:
            if task == "classification":
                losses[task] = class_loss(self.heads[task](code), batch[LABEL])
            elif task == "occupancy":
                logits = per_point[..., 0] if per_point is not None else self.heads[task](batch[QUERY], code)
                losses[task] = occupancy_loss(logits, batch[OCCUPANCY])
            elif task == "segmentation":
                logits = per_point[..., 1:] if per_point is not None else self.heads[task](batch[QUERY], code)
                losses[task] = part_loss(logits, batch[PART])
        return losses


def check_tasks(tasks: Sequence[str], decoders: str, targets: Sequence[str], dataset: str) -> None:
    """Clear errors for an unknown task, a bad decoder layout or a dataset without a task's targets."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise ValueError(f"protocol.tasks={list(tasks)}: expected a non-empty subset of {list(TASKS)}")
    if decoders not in ("parallel", "joint"):
        raise ValueError(f"protocol.decoders={decoders!r}: expected 'parallel' or 'joint'")
    if decoders == "joint" and not {"occupancy", "segmentation"} <= set(tasks):
        raise ValueError("protocol.decoders=joint decodes occupancy and segmentation together; "
                         f"protocol.tasks={list(tasks)} lacks one of them")
    missing = [t for t in tasks if TASK_TARGETS[t] not in targets]
    if missing:
        raise ValueError(f"dataset {dataset} provides {', '.join(targets)} targets; tasks {missing} need "
                         f"{', '.join(TASK_TARGETS[t] for t in missing)}")


def build_model(ctx: RunContext, tasks: Sequence[str], decoders: str, head_names: dict[str, str]) -> MultitaskModel:
    """The encoder chosen for the run and a freshly built head per task."""
    info = ctx.dataset.info
    check_tasks(tasks, decoders, info.targets, info.name)
    encoder = ctx.build("encoder", info)
    heads: dict[str, nn.Module] = {}
    if decoders == "joint":
        joint = ctx.build_named(Kind.DECODER, head_names["joint"], encoder.encoding, info)
        heads = {"occupancy": Channels(joint, 0), "segmentation": Channels(joint, slice(1, None))}
    for task in tasks:
        if task not in heads:
            heads[task] = ctx.build_named(Kind.DECODER, head_names[task], encoder.encoding, info)
    if decoders == "joint":
        heads["joint"] = joint  # the shared network, decoded once per batch in losses()
    model = MultitaskModel(encoder, heads, ctx.input_key)
    return model.to(ctx.device)


def split_keys(ctx: RunContext, config: TaskHeadsConfig, tasks: Sequence[str]) -> SplitKeys:
    """What training ``tasks`` together and scoring, evaluating and flooring each by its own protocol read."""
    training = {"train": (ctx.input_key, *(key for task in tasks for key in LOSS_KEYS[task]))}
    return merge_split_keys(training, *(SCORERS[task](config).split_keys(ctx) for task in tasks))


def check_data(ctx: RunContext, config: TaskHeadsConfig, tasks: Sequence[str], protocol: str) -> None:
    """Stop before training if a split ``tasks`` read is empty or lacks a key they read."""
    check_splits(ctx.dataset, split_keys(ctx, config, tasks), protocol)


def train(model: MultitaskModel, ctx: RunContext, config: TaskHeadsConfig, tasks: Sequence[str], run_dir: Path,
          parameters: Iterable[nn.Parameter] | None = None) -> float:
    """Fit the weighted loss sum; model selection on the first task's validation metric."""
    weights = {task: 1.0 if task == "occupancy" else float(config.weights.get(task, 1.0)) for task in tasks}

    def loss(model: MultitaskModel, batch: dict) -> torch.Tensor:
        losses = model.losses(batch)
        return sum(weights[task] * losses[task] for task in tasks)

    selecting = SCORERS[tasks[0]](config)
    return fit(model, ctx.dataset.split("train"), config, run_dir, ctx.device, ctx.seed, loss,
               validate=lambda model: selecting.score(model.view(tasks[0]), ctx, "val"),
               metric_name=selecting.selection, parameters=parameters)


def train_once_for(model: MultitaskModel, ctx: RunContext, config: TaskHeadsConfig, tasks: Sequence[str],
                   decoders: str, directory: Path) -> float:
    """``train``, reusing the weights of an identical earlier training (a hold-out stage 1 repeats a
    multi-task run's): the recipe is the shared training settings, the task set and every head. Occupancy alone
    (the ONet encoder of the hold-out rows) is the reconstruction protocol's training, with its recipe: the
    reconstruction run of the same encoder and decoder and every hold-out on the ONet encoder share one."""
    if list(tasks) == ["occupancy"] and decoders == "parallel":
        onet, view = ReconstructionProtocol(config), model.view("occupancy")
        head = ctx.named_spec_and_config(Kind.DECODER, config.heads["occupancy"])
        return train_once(ctx, view, onet.recipe(ctx, head), directory, lambda directory: onet.train(view, ctx,
                                                                                                     directory))
    settings = {f.name: getattr(config, f.name) for f in dataclasses.fields(TaskHeadsConfig)}
    heads = ["joint"] if decoders == "joint" else []
    heads += [task for task in tasks if not (decoders == "joint" and task in ("occupancy", "segmentation"))]
    parts = {"encoder": (ctx.specs["encoder"], ctx.config("encoder"))}
    parts.update({f"head_{head}": ctx.named_spec_and_config(Kind.DECODER, config.heads[head]) for head in heads})
    return train_once(ctx, model, recipe(ctx, "multitask", {**settings, "tasks": list(tasks)}, parts), directory,
                      lambda directory: train(model, ctx, config, tasks, directory))


def evaluate(model: MultitaskModel, ctx: RunContext, config: TaskHeadsConfig, tasks: Sequence[str]) -> list[Metric]:
    """Every task's test metrics, computed by that task's own protocol on the model's view."""
    return [m for task in SCORERS if task in tasks
            for m in SCORERS[task](config).evaluate(model.view(task), ctx)]


def floors(ctx: RunContext, config: TaskHeadsConfig, tasks: Sequence[str]) -> list[Metric]:
    """The trivial floors of every task's test metrics, computed by that task's own protocol."""
    return [m for task in SCORERS if task in tasks for m in SCORERS[task](config).floors(ctx).metrics]


class MultitaskProtocol:
    def __init__(self, config: MultitaskConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> list[Metric]:
        cfg = self.config
        model = build_model(ctx, cfg.tasks, cfg.decoders, cfg.heads)
        check_data(ctx, cfg, cfg.tasks, "multitask")
        best_val = train_once_for(model, ctx, cfg, cfg.tasks, cfg.decoders, ctx.run_dir)
        return ([metric("val", SCORERS[cfg.tasks[0]].selection, best_val)]
                + evaluate(model, ctx, cfg, cfg.tasks)
                + [metric("test", "parameters", sum(p.numel() for p in model.parameters()))]
                + floors(ctx, cfg, cfg.tasks))
