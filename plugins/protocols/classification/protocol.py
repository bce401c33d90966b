"""The classification protocol: cross-entropy on the class label, selected on validation top-1."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from harness.data import INDEX, LABEL
from harness.floors import majority_label, training_arrays
from harness.losses import class_loss
from harness.metrics.classification import classification_metrics
from harness.metrics.directions import metric
from harness.runner import RunContext
from harness.split_checks import SplitKeys
from harness.store import Metric
from harness.task_protocol import TaskProtocol
from harness.training import fit, make_loader, to_device


class EncoderClassifier(nn.Module):
    """Encoder + classifier head: input -> class logits."""

    def __init__(self, encoder: nn.Module, head: nn.Module, input_key: str) -> None:
        super().__init__()
        self.encoder, self.head, self.input_key = encoder, head, input_key

    def forward(self, batch: dict) -> torch.Tensor:
        return self.head(self.encoder(batch[self.input_key]))


class ConstantClassifier(nn.Module):
    """Predicts one class for every item: the trivial floor of the majority training class."""

    def __init__(self, label: int, classes: int) -> None:
        super().__init__()
        self.label, self.classes = label, classes

    def forward(self, batch: dict) -> torch.Tensor:
        logits = torch.zeros(len(batch[INDEX]), self.classes, device=batch[INDEX].device)
        logits[:, self.label] = 1.0
        return logits


class ClassificationProtocol(TaskProtocol):
    name, selection = "classification", "top1"

    def build_model(self, ctx: RunContext) -> EncoderClassifier:
        return EncoderClassifier(*ctx.encoder_and_decoder(), ctx.input_key).to(ctx.device)

    def train(self, model: EncoderClassifier, ctx: RunContext, directory: Path) -> float:
        return fit(model, ctx.dataset.split("train"), self.config, directory, ctx.device, ctx.seed,
                   loss_fn=lambda model, batch: class_loss(model(batch), batch[LABEL]),
                   validate=lambda model: self.score(model, ctx, "val"), metric_name="top1")

    def score(self, model: EncoderClassifier, ctx: RunContext, split: str) -> float:
        predicted, target = self.predict(model, ctx, split)
        return float(np.mean(predicted == target))

    def evaluate(self, model: EncoderClassifier, ctx: RunContext) -> list[Metric]:
        predicted, target = self.predict(model, ctx, "test")
        overall, per_class = classification_metrics(predicted, target, ctx.dataset.info.classes)
        return ([metric("test", name, value) for name, value in overall.items()]
                + [metric("test", "top1", value, class_name=name) for name, value in per_class.items()])

    def split_keys(self, ctx: RunContext) -> SplitKeys:
        """The input and label of every split; the test items' index too (the constant floor sizes its batch by it)."""
        read = (ctx.input_key, LABEL)
        return {"train": read, "val": read, "test": (*read, INDEX)}

    def trivial_models(self, ctx: RunContext) -> list[ConstantClassifier]:
        labels = np.stack(training_arrays(ctx.dataset.split("train"), [LABEL])[LABEL])
        return [ConstantClassifier(majority_label(labels), len(ctx.dataset.info.classes))]

    @torch.no_grad()
    def predict(self, model: EncoderClassifier, ctx: RunContext, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Predicted and true labels of every item of ``split``."""
        model.eval()
        loader = make_loader(ctx.dataset.split(split), self.config.batch_size, shuffle=False, seed=ctx.seed,
                             workers=self.config.workers)
        predicted, target = [], []
        for batch in loader:
            predicted.append(model(to_device(batch, ctx.device)).argmax(-1).cpu())
            target.append(batch[LABEL])
        return torch.cat(predicted).numpy(), torch.cat(target).numpy()
