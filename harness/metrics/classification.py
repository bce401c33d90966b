"""Classification metrics: overall top-1 accuracy and the mean of per-class accuracies.

The mean over classes weights every class equally, so a frequent class cannot hide a poor rare one;
classes absent from the evaluated labels are left out of that mean (their accuracy is undefined).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def per_class_accuracy(predicted: np.ndarray, target: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Top-1 accuracy of each class present in ``target``, by class name."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    return {classes[c]: float(np.mean(predicted[target == c] == c)) for c in np.unique(target)}


def classification_metrics(predicted: np.ndarray, target: np.ndarray, classes: Sequence[str]
                           ) -> tuple[dict[str, float], dict[str, float]]:
    """(overall {top1, mean_class_top1}, per-class top1)."""
    if len(target) == 0:
        raise ValueError("no samples to score")
    per_class = per_class_accuracy(predicted, target, classes)
    overall = {"top1": float(np.mean(np.asarray(predicted) == np.asarray(target))),
               "mean_class_top1": float(np.mean(list(per_class.values())))}
    return overall, per_class
