"""Classification metrics against hand-computed values, and the protocol end to end on the smoke profile."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.config import compose_config, register_configs
from harness.data import DatasetInfo
from harness.encoding import EncodingInfo
from harness.metrics.classification import classification_metrics
from harness.registry import default_registry
from harness.runner import execute
from harness.specs import Kind


def test_top1_and_mean_class_accuracy_by_hand():
    # class a: 3 samples, 2 right; class b: 1 sample, 0 right; class c never appears
    overall, per_class = classification_metrics(np.array([0, 0, 1, 0]), np.array([0, 0, 0, 1]), ["a", "b", "c"])
    assert per_class == {"a": pytest.approx(2 / 3), "b": 0.0}
    assert overall["top1"] == pytest.approx(0.5)
    assert overall["mean_class_top1"] == pytest.approx((2 / 3 + 0.0) / 2)


def test_classifier_head_is_a_two_layer_mlp_sized_from_code_and_classes():
    spec = default_registry().get(Kind.DECODER, "classifier")
    info = DatasetInfo(name="d", modalities=("points",), targets=("label",), classes=("a", "b", "c"))
    head = spec.build(spec.config(), EncodingInfo("global", 512), info)
    assert head(torch.zeros(5, 512)).shape == (5, 3)
    assert sum(p.numel() for p in head.parameters()) == (512 * 256 + 256) + (256 * 3 + 3)
    with pytest.raises(ValueError, match="accepts \\['global'\\]"):
        spec.build(spec.config(), EncodingInfo("points", 32), info)
    linear = spec.build(spec.config(hidden=0), EncodingInfo("global", 64), info)
    assert [type(m).__name__ for m in linear.modules()][1:] == ["Sequential", "Linear"]
    assert sum(p.numel() for p in linear.parameters()) == 64 * 3 + 3
    with pytest.raises(ValueError, match="hidden=-1: must be >= 0"):
        spec.build(spec.config(hidden=-1), EncodingInfo("global", 64), info)


def test_classification_protocol_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    registry = default_registry()
    register_configs(registry)
    cfg = compose_config(["protocol=classification", "decoder=classifier", "profile=smoke"])
    outcome = execute(cfg, registry)
    assert outcome.status == "succeeded"
    values = {(m.split, m.name, m.class_name): m.value for m in outcome.metrics}
    assert 0.0 <= values[("test", "top1", None)] <= 1.0
    per_class = [v for (split, name, cls), v in values.items() if split == "test" and name == "top1"
                 and cls is not None]
    assert values[("test", "mean_class_top1", None)] == pytest.approx(np.mean(per_class))
