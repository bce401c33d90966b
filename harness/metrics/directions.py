"""Which way is better for each metric name, so every protocol records it the same way."""
from __future__ import annotations

from harness.store import Metric

HIGHER_IS_BETTER: dict[str, bool | None] = {
    "iou": True,
    "miou": True,
    "class_miou": True,
    "top1": True,
    "mean_class_top1": True,
    "accuracy": False,  # mean distance prediction -> ground truth (reconstruction)
    "completeness": False,  # mean distance ground truth -> prediction
    "chamfer_l1": False,
    "chamfer_l2": False,
    "normal_consistency": True,
    "fscore": True,  # any "fscore@<threshold>"
    "parameters": None,  # descriptive
}


def direction(name: str) -> bool | None:
    """True if higher is better, False if lower, None if descriptive or unknown."""
    return HIGHER_IS_BETTER.get(name.split("@", 1)[0])


def metric(split: str, name: str, value: float, class_name: str | None = None) -> Metric:
    return Metric(split=split, name=name, value=float(value), higher_is_better=direction(name), class_name=class_name)
