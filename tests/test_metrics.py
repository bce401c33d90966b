"""Reconstruction metrics against analytic (concentric spheres) and hand-computed values."""
from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from harness.metrics.reconstruction import mean_over_classes, mesh_metrics, surface_metrics, volumetric_iou


def fibonacci_sphere(n: int) -> np.ndarray:
    """Evenly spread unit directions, deterministic."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    phi = np.pi * (1 + 5**0.5) * i
    s = np.sqrt(1 - z**2)
    return np.stack([s * np.cos(phi), s * np.sin(phi), z], axis=1)


# --- volumetric IoU -------------------------------------------------------------------------------


def test_iou_hand_made():
    pred = np.array([0.9, 0.6, 0.2, 0.4, 0.5])
    gt = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    # pred >= 0.5 -> [1, 1, 0, 0, 1]; gt -> [1, 0, 1, 0, 1]: intersection 2, union 4.
    assert volumetric_iou(pred, gt) == pytest.approx(0.5)
    # pred >= 0.3 -> [1, 1, 0, 1, 1]: intersection 2, union 5.
    assert volumetric_iou(pred, gt, threshold=0.3) == pytest.approx(0.4)
    assert volumetric_iou(gt, gt) == 1.0
    assert volumetric_iou(1 - gt, gt) == 0.0
    assert volumetric_iou(pred.reshape(1, 5), gt.astype(bool)) == pytest.approx(0.5)


def test_iou_both_empty_is_one():
    assert volumetric_iou(np.zeros(10), np.zeros(10)) == 1.0
    assert volumetric_iou(np.full(10, 0.4), np.zeros(10)) == 1.0
    assert volumetric_iou(np.ones(10), np.zeros(10)) == 0.0


def test_iou_size_mismatch():
    with pytest.raises(ValueError):
        volumetric_iou(np.zeros(3), np.zeros(4))


# --- surface metrics ------------------------------------------------------------------------------


def test_concentric_spheres_same_directions_exact():
    # pred on radius r1, gt on radius r2 along the same directions: each point's nearest neighbour is
    # its radial partner, so every distance is exactly r2 - r1 and normals agree exactly.
    r1, r2 = 0.3, 0.35
    u = fibonacci_sphere(20_000)
    m = surface_metrics(r1 * u, u, r2 * u, -u, fscore_thresholds=(0.04, 0.06))
    gap = r2 - r1
    assert m["accuracy"] == pytest.approx(gap, abs=1e-9)
    assert m["completeness"] == pytest.approx(gap, abs=1e-9)
    assert m["chamfer_l1"] == pytest.approx(gap, abs=1e-9)
    assert m["chamfer_l2"] == pytest.approx(gap**2, abs=1e-9)
    assert m["normal_consistency"] == pytest.approx(1.0, abs=1e-9)  # flipped normals are not penalised
    assert m["fscore@0.04"] == 0.0
    assert m["fscore@0.06"] == 1.0
    assert set(m) == {"accuracy", "completeness", "chamfer_l1", "chamfer_l2", "normal_consistency",
                      "fscore@0.04", "fscore@0.06"}
    assert all(type(x) is float for x in m.values())


def test_concentric_spheres_random_samples():
    # Independent dense random samples: the tangential offset to the nearest neighbour is small
    # compared with the radial gap, so distances are ~ r2 - r1.
    rng = np.random.default_rng(0)
    r1, r2 = 0.3, 0.4
    a = rng.normal(size=(50_000, 3))
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b = rng.normal(size=(50_000, 3))
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    m = surface_metrics((r1 * a).astype(np.float32), a.astype(np.float32), (r2 * b).astype(np.float32),
                        b.astype(np.float32), fscore_thresholds=(0.09, 0.11))
    gap = r2 - r1
    assert m["accuracy"] == pytest.approx(gap, rel=0.01)
    assert m["completeness"] == pytest.approx(gap, rel=0.01)
    assert m["chamfer_l1"] == pytest.approx(gap, rel=0.01)
    assert m["chamfer_l2"] == pytest.approx(gap**2, rel=0.02)
    assert m["normal_consistency"] == pytest.approx(1.0, abs=1e-3)
    assert m["fscore@0.09"] == 0.0
    assert m["fscore@0.11"] == 1.0


def test_identical_point_sets():
    rng = np.random.default_rng(1)
    p = rng.uniform(-0.5, 0.5, size=(5000, 3))
    n = rng.normal(size=(5000, 3))
    m = surface_metrics(p, n, p.copy(), n.copy(), fscore_thresholds=(0.0, 0.01))
    for key in ("accuracy", "completeness", "chamfer_l1", "chamfer_l2"):
        assert m[key] == 0.0
    assert m["normal_consistency"] == pytest.approx(1.0)  # non-unit normals are normalised
    assert m["fscore@0.0"] == 1.0 and m["fscore@0.01"] == 1.0


def test_hand_computed_small_case():
    pred = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    gt = np.array([[0.0, 0.0, 0.005]])
    pred_n = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    gt_n = np.array([[0.0, np.sin(np.pi / 3), np.cos(np.pi / 3)]])  # 60 degrees from +z
    m = surface_metrics(pred, pred_n, gt, gt_n, fscore_thresholds=(0.01, 2.0))
    far = math.sqrt(1 + 0.005**2)
    assert m["accuracy"] == pytest.approx((0.005 + far) / 2)
    assert m["completeness"] == pytest.approx(0.005)
    assert m["chamfer_l1"] == pytest.approx(((0.005 + far) / 2 + 0.005) / 2)
    assert m["chamfer_l2"] == pytest.approx(((0.005**2 + far**2) / 2 + 0.005**2) / 2)
    # pred->gt: both pred points match the single gt normal: |cos| 0.5 and 0; gt->pred matches pred[0]: 0.5.
    assert m["normal_consistency"] == pytest.approx(0.5 * (0.25 + 0.5))
    # precision 1/2, recall 1 -> F = 2/3.
    assert m["fscore@0.01"] == pytest.approx(2 / 3)
    assert m["fscore@2.0"] == 1.0


def test_no_normals_omits_normal_consistency():
    p = fibonacci_sphere(100)
    m = surface_metrics(p, None, p, None)
    assert "normal_consistency" not in m
    assert m["chamfer_l1"] == 0.0 and m["fscore@0.01"] == 1.0


def test_empty_prediction_convention():
    gt = fibonacci_sphere(100)
    m = surface_metrics(np.zeros((0, 3)), np.zeros((0, 3)), gt, gt, fscore_thresholds=(0.01, 0.02))
    assert m == {
        "accuracy": math.sqrt(3),
        "completeness": math.sqrt(3),
        "chamfer_l1": math.sqrt(3),
        "chamfer_l2": 3.0,
        "normal_consistency": 0.0,
        "fscore@0.01": 0.0,
        "fscore@0.02": 0.0,
    }
    assert "normal_consistency" not in surface_metrics(np.zeros((0, 3)), None, gt, gt)


# --- mesh metrics ---------------------------------------------------------------------------------


def test_mesh_metrics_sphere_vs_its_own_samples():
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=0.4)
    gt = 0.4 * fibonacci_sphere(30_000)
    m = mesh_metrics(mesh.vertices, mesh.faces, gt, gt / 0.4, n_points=30_000)
    # Only sampling noise: the mean nearest-neighbour distance at 30k points on area 4 pi 0.4^2 is about
    # 0.5 / sqrt(density) ~ 4e-3 (the icosphere's chord error, ~1e-3 r, is negligible).
    assert m["chamfer_l1"] < 5e-3
    assert m["normal_consistency"] > 0.99
    assert m["fscore@0.01"] > 0.99  # a few random gaps in the prediction exceed 0.01
    # Deterministic by default.
    assert mesh_metrics(mesh.vertices, mesh.faces, gt, gt, n_points=1000) == mesh_metrics(
        mesh.vertices, mesh.faces, gt, gt, n_points=1000
    )


def test_mesh_metrics_offset_sphere():
    # Predicted sphere of radius 0.3 against gt samples on radius 0.35: distances ~0.05.
    mesh = trimesh.creation.icosphere(subdivisions=5, radius=0.3)
    u = fibonacci_sphere(50_000)
    m = mesh_metrics(mesh.vertices, mesh.faces, 0.35 * u, u, n_points=50_000, fscore_thresholds=(0.04, 0.06))
    assert m["chamfer_l1"] == pytest.approx(0.05, rel=0.02)
    assert m["fscore@0.04"] == 0.0 and m["fscore@0.06"] == 1.0


def test_mesh_metrics_empty_mesh():
    gt = fibonacci_sphere(100)
    m = mesh_metrics(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), gt, gt)
    assert m["chamfer_l1"] == math.sqrt(3) and m["chamfer_l2"] == 3.0
    assert m["normal_consistency"] == 0.0 and m["fscore@0.01"] == 0.0
    degenerate = mesh_metrics(np.zeros((3, 3)), np.array([[0, 1, 2]]), gt, None)
    assert degenerate["accuracy"] == math.sqrt(3) and "normal_consistency" not in degenerate


# --- class means ----------------------------------------------------------------------------------


def test_mean_over_classes():
    per_shape = [{"iou": 1.0, "cd": 0.1}, {"iou": 0.5, "cd": 0.3}, {"iou": 0.2, "cd": 0.5}]
    per_class, overall = mean_over_classes(per_shape, ["chair", "chair", "plane"])
    assert list(per_class) == ["chair", "plane"]
    assert per_class["chair"] == pytest.approx({"iou": 0.75, "cd": 0.2})
    assert per_class["plane"] == pytest.approx({"iou": 0.2, "cd": 0.5})
    # Classes weigh equally: (0.75 + 0.2) / 2, not the shape mean (1.7 / 3).
    assert overall == pytest.approx({"iou": 0.475, "cd": 0.35})
    with pytest.raises(ValueError):
        mean_over_classes(per_shape, ["chair"])
