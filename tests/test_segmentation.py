"""Part mIoU against hand-computed values, and the segmentation protocol end to end on the smoke profile."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.config import compose_config, register_configs
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
    per_category = [v for (split, name, cls), v in values.items() if split == "test" and name == "miou"
                    and cls is not None]
    assert values[("test", "class_miou", None)] == pytest.approx(np.mean(per_category))


def test_interpolation_returns_an_encoded_points_own_features_and_weights_by_inverse_distance():
    from harness_plugins.decoders.point_segmentation.model import interpolate

    xyz = torch.tensor([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [5.0, 5.0, 5.0]]])
    features = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [7.0, 7.0]]])
    on_point = interpolate(xyz[:, :1], xyz, features, k=3)
    torch.testing.assert_close(on_point, features[:, :1], atol=1e-6, rtol=0)
    # a quarter of the way from point 0 to point 1 (k=2): weights 1/0.25 and 1/0.75 -> 0.75, 0.25
    between = interpolate(torch.tensor([[[0.25, 0.0, 0.0]]]), xyz, features, k=2)
    torch.testing.assert_close(between, torch.tensor([[[0.75, 0.25]]]))


def test_per_point_encoder_carries_the_global_code_of_the_same_network():
    from harness_plugins.encoders.pointnet.model import PerPointResnetPointNet

    torch.manual_seed(0)
    encoder = PerPointResnetPointNet(hidden=16, code_size=8)
    points = torch.randn(2, 50, 3)
    xyz, features = encoder(points)
    assert torch.equal(xyz, points) and features.shape == (2, 50, 16 + 8)
    torch.testing.assert_close(features[:, 0, 16:], encoder.net(points))


def test_per_point_features_tell_the_points_of_a_cloud_apart_from_the_start():
    """The local part is the first block's output, whose spread across a cloud's points at initialisation is of the
    order of the first layer's; the last block's (the encoder's version 1) was ~50 times smaller, and a per-point head
    on it stayed at the segmentation floor on one seed."""
    from harness_plugins.encoders.pointnet.model import PerPointResnetPointNet

    torch.manual_seed(0)
    encoder = PerPointResnetPointNet(hidden=64, code_size=64)
    points = torch.rand(4, 300, 3) - 0.5
    with torch.no_grad():
        _, features = encoder(points)
        first_layer_spread = encoder.net.fc_pos(points).std(dim=1).mean()
        torch.testing.assert_close(features[..., :64], encoder.net.blocks[0](encoder.net.fc_pos(points)))
    assert features[..., :64].std(dim=1).mean() > 0.25 * first_layer_spread


def test_conventional_per_point_baseline_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    registry = default_registry()
    register_configs(registry)
    cfg = compose_config(["protocol=segmentation", "encoder=pointnet_per_point", "decoder=point_segmentation",
                          "profile=smoke"])
    outcome = execute(cfg, registry)
    assert outcome.status == "succeeded"
    assert 0.0 <= {m.name: m.value for m in outcome.metrics if m.class_name is None}["miou"] <= 1.0


def test_conventional_variant_segments_the_input_points(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    registry = default_registry()
    register_configs(registry)
    cfg = compose_config(["protocol=segmentation", "encoder=pointnet_per_point", "decoder=point_segmentation",
                          "profile=smoke", "protocol.points_as_queries=true"])
    spec = registry.get("dataset", "synthetic_shapes")
    item = spec.build(spec.config(**spec.profiles["smoke"]), cache_dir=tmp_path / "cache").split("val")[0]
    # input points are noisy surface samples: each carries a part of its own category, never -1
    assert item["points_part"].shape == item["points"].shape[:1] and (item["points_part"] >= 0).all()
    outcome = execute(cfg, registry)
    assert outcome.status == "succeeded"
    assert 0.0 <= {m.name: m.value for m in outcome.metrics if m.class_name is None}["miou"] <= 1.0
