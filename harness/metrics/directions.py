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
    # scenes (the contextualising paper): Chamfer L1/L2 of extracted surfaces, F1 at δ and 2δ, semantic F1 per
    # class averaged; the validation scores its stages are selected on
    "cd_l1": False,
    "cd_l2": False,
    "f1_delta": True,
    "f1_2delta": True,
    "mf1_delta": True,
    "mf1_2delta": True,
    "udf_l1": False,  # mean |clamped predicted - clamped true| unsigned distance over validation queries
    "query_miou": True,  # mIoU of the semantic decoder's labels at the validation queries
    "parameters": None,  # descriptive
    # compression and quantisation
    "delta": True,  # compressed minus uncompressed score
    "delta_control": True,  # compressed minus the uncompressed model fine-tuned alike
    "parameters_change_pct": False,
    "size_mb": False,
    "bits": False,
}
# a metric measured at another stage of a run keeps its direction: "pre_top1" is top1 before fine-tuning,
# "baseline_top1" the uncompressed model's, "control_top1" the uncompressed model's after the same
# fine-tuning, "stage1_iou" a hold-out's pre-training score
STAGES = ("baseline_", "control_", "pre_", "stage1_")


def direction(name: str) -> bool | None:
    """True if higher is better, False if lower, None if descriptive or unknown."""
    for stage in STAGES:
        name = name.removeprefix(stage)
    return HIGHER_IS_BETTER.get(name.split("@", 1)[0])


def metric(split: str, name: str, value: float, class_name: str | None = None) -> Metric:
    return Metric(split=split, name=name, value=float(value), higher_is_better=direction(name), class_name=class_name)
