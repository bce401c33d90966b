"""Part mIoU against hand-computed values, and the segmentation protocol end to end on the smoke profile."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.bench import compose_config
from harness.config import register_configs
from harness.data import IGNORE_INDEX
from harness.losses import part_loss
from harness.metrics.segmentation import aggregate_miou, shape_miou
from harness.registry import default_registry
from harness.runner import execute


def test_shape_miou_by_hand_with_absent_parts_counting_one():
    predicted = np.array([3, 3, 4, 4, 4])
    target = np.array([3, 4, 4, 4, 3])
    # part 3: inter 1, union 3 -> 1/3; part 4: inter 2, union 4 -> 1/2; part 5 absent from both -> 1
    assert shape_miou(predicted, target, (3, 4, 5)) == pytest.approx((1 / 3 + 1 / 2 + 1) / 3)
    assert shape_miou(target, target, (3, 4)) == 1.0


def test_instance_and_class_miou():
    overall, per_category = aggregate_miou([1.0, 0.5, 0.0], ["chair", "chair", "mug"])
    assert per_category == {"chair": 0.75, "mug": 0.0}
    assert overall == {"miou": pytest.approx(0.5), "class_miou": pytest.approx(0.375)}


def test_part_loss_ignores_outside_points():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]]])
    labels = torch.tensor([[0, 0, IGNORE_INDEX]])
    expected = (torch.log1p(torch.exp(torch.tensor(-2.0))) + torch.log1p(torch.exp(torch.tensor(2.0)))) / 2
    loss = part_loss(logits, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_segmentation_protocol_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    registry = default_registry()
    register_configs(registry)
    outcome = execute(compose_config(["protocol=segmentation", "decoder=segmentation", "profile=smoke"]), registry)
    assert outcome.status == "succeeded"
    values = {(m.split, m.name, m.class_name): m.value for m in outcome.metrics}
    assert 0.0 <= values[("test", "miou", None)] <= 1.0
    per_category = [v for (split, name, cls), v in values.items() if name == "miou" and cls is not None]
    assert values[("test", "class_miou", None)] == pytest.approx(np.mean(per_category))
