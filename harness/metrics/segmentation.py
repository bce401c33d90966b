"""Part segmentation scores as in ShapeNetPart evaluations (PointNet) and the implicit formulation of
"Towards Generalising Neural Implicit Representations".

Per shape: the IoU of each part of the shape's category over the scored points, a part absent from
both prediction and ground truth counting as IoU 1; the shape's mIoU is the mean over its category's
parts. ``instance mIoU`` averages shapes; ``class mIoU`` averages the per-category means.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def shape_miou(predicted: np.ndarray, target: np.ndarray, parts: Sequence[int]) -> float:
    """Mean IoU over ``parts`` (the category's part ids) of one shape's scored points."""
    ious = []
    for part in parts:
        predicted_part, target_part = predicted == part, target == part
        union = np.count_nonzero(predicted_part | target_part)
        ious.append(1.0 if union == 0 else np.count_nonzero(predicted_part & target_part) / union)
    return float(np.mean(ious))


def aggregate_miou(shape_scores: Sequence[float], categories: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
    """(overall {miou: mean over shapes, class_miou: mean over categories}, per-category mean)."""
    scores, names = np.asarray(shape_scores, dtype=float), np.asarray(categories)
    per_category = {name: float(scores[names == name].mean()) for name in sorted(set(categories))}
    return {"miou": float(scores.mean()), "class_miou": float(np.mean(list(per_category.values())))}, per_category
