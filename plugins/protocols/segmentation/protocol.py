"""The segmentation protocol: per-point part cross-entropy, scored by per-shape part mIoU."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.data import IGNORE_INDEX, LABEL, PART, POINTS_PART, QUERY
from harness.floors import majority_per_group, training_arrays
from harness.implicit import ImplicitNetwork
from harness.losses import part_loss
from harness.metrics.directions import metric
from harness.metrics.segmentation import aggregate_miou, shape_miou
from harness.progress import progress
from harness.runner import RunContext
from harness.split_checks import SplitKeys
from harness.store import Metric
from harness.task_protocol import TaskProtocol
from harness.training import as_batch, fit



class CategoryMajorityPart(nn.Module):
    """Predicts, at every point of a shape, the part most frequent in its category's training labels: the trivial
    floor, scored by the protocol like a trained network."""

    def __init__(self, part_of_class: list[int], parts: int, input_key: str) -> None:
        super().__init__()
        self.part_of_class, self.parts, self.input_key = torch.tensor(part_of_class), parts, input_key

    def forward(self, batch: dict, points: torch.Tensor) -> torch.Tensor:
        part = self.part_of_class.to(points.device)[batch[LABEL]]
        return nn.functional.one_hot(part, self.parts).float()[:, None, :].expand(-1, points.shape[1], -1)


class SegmentationProtocol(TaskProtocol):
    name, selection = "segmentation", "miou"
    floor_fields = ("points_as_queries", "category_parts_only")

    def build_model(self, ctx: RunContext) -> ImplicitNetwork:
        return ImplicitNetwork(*ctx.encoder_and_decoder(), ctx.input_key).to(ctx.device)

    def train(self, model: ImplicitNetwork, ctx: RunContext, directory: Path) -> float:
        return fit(model, ctx.dataset.split("train"), self.config, directory, ctx.device, ctx.seed,
                   lambda model, batch: part_loss(model(batch, self.where(batch, model)), self.labels(batch)),
                   validate=lambda model: self.score(model, ctx, "val"), metric_name="mIoU")

    def score(self, model: ImplicitNetwork, ctx: RunContext, split: str) -> float:
        return self.scores(model, ctx, split)[0]["miou"]

    def evaluate(self, model: ImplicitNetwork, ctx: RunContext) -> list[Metric]:
        overall, per_category = self.scores(model, ctx, "test")
        return ([metric("test", name, value) for name, value in overall.items()]
                + [metric("test", "miou", value, class_name=name) for name, value in per_category.items()])

    def where(self, batch: dict, model: ImplicitNetwork) -> torch.Tensor:
        """The points segmented: the queries, or the encoder's own input points (the conventional task)."""
        return batch[model.input_key] if self.config.points_as_queries else batch[QUERY]

    @property
    def label_key(self) -> str:
        """The labels segmented: of the input points (the conventional task) or of the queries."""
        return POINTS_PART if self.config.points_as_queries else PART

    def labels(self, batch: dict) -> torch.Tensor:
        return batch[self.label_key]

    def split_keys(self, ctx: RunContext) -> SplitKeys:
        """Every split: the input, the points segmented and their labels, and the category (its parts)."""
        where = () if self.config.points_as_queries else (QUERY,)
        read = (ctx.input_key, *where, self.label_key, LABEL)
        return {split: read for split in ("train", "val", "test")}

    def trivial_models(self, ctx: RunContext) -> list[CategoryMajorityPart]:
        """The majority part of each category's labelled training points (a category without any: its first
        part)."""
        info = ctx.dataset.info
        arrays = training_arrays(ctx.dataset.split("train"), [self.label_key, LABEL])
        labels = arrays[self.label_key]
        categories = np.concatenate([np.full(len(shape), int(label)) for shape, label in zip(labels, arrays[LABEL])])
        majority = majority_per_group(categories, np.concatenate(labels))
        part_of_class = [majority.get(c, info.parts_per_class[name][0]) for c, name in enumerate(info.classes)]
        return [CategoryMajorityPart(part_of_class, len(info.parts), ctx.input_key)]

    @torch.no_grad()
    def scores(self, model: ImplicitNetwork, ctx: RunContext, split: str) -> tuple[dict[str, float], dict[str, float]]:
        """Per-shape mIoU over the labelled points of every item of ``split``, aggregated."""
        model.eval()
        info, data = ctx.dataset.info, ctx.dataset.split(split)
        shape_scores, categories = [], []
        for index in progress(range(len(data)), desc=f"{split} mIoU"):
            item = data[index]
            category = info.classes[int(item[LABEL])]
            parts = info.parts_per_class[category]
            batch = as_batch(item, ctx.device)
            logits = model(batch, self.where(batch, model))[0]
            if self.config.category_parts_only:
                allowed = torch.full((logits.shape[-1],), -torch.inf, device=logits.device)
                allowed[list(parts)] = 0.0
                logits = logits + allowed
            labels = self.labels(item)
            labelled = labels != IGNORE_INDEX
            predicted = logits.argmax(-1).cpu()[labelled].numpy()
            shape_scores.append(shape_miou(predicted, labels[labelled].numpy(), parts))
            categories.append(category)
        return aggregate_miou(shape_scores, categories)
