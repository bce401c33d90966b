"""The segmentation protocol: per-point part cross-entropy, scored by per-shape part mIoU."""
from __future__ import annotations

from pathlib import Path

import torch

from harness.data import IGNORE_INDEX, LABEL, PART, POINTS_PART, QUERY
from harness.implicit import ImplicitNetwork
from harness.losses import part_loss
from harness.metrics.directions import metric
from harness.metrics.segmentation import aggregate_miou, shape_miou
from harness.progress import progress
from harness.runner import RunContext
from harness.store import Metric
from harness.task_protocol import TaskProtocol
from harness.training import as_batch, fit



class SegmentationProtocol(TaskProtocol):
    name, selection = "segmentation", "miou"

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

    def labels(self, batch: dict) -> torch.Tensor:
        return batch[POINTS_PART] if self.config.points_as_queries else batch[PART]

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
