"""Reconstruction metrics in the Occupancy Networks conventions.

Conventions (all distances Euclidean, in the normalised unit-cube frame of the shapes):

* ``volumetric_iou``: prediction binarised as ``pred >= threshold``, ground truth as ``gt >= 0.5``,
  ``|A ∩ B| / |A ∪ B|`` over the same uniformly drawn points. Both sets empty (union zero) gives
  **1.0**: the prediction matches the empty ground truth exactly. (Occupancy Networks' ``compute_iou``
  divides 0/0 and yields NaN there, which would poison every class mean; an empty-vs-empty pair is a
  perfect answer, so 1.0 is the consistent score.)
* ``surface_metrics`` between a predicted and a ground-truth point set, with nearest neighbours in the
  other set:
  ``accuracy`` = mean pred→gt distance, ``completeness`` = mean gt→pred distance,
  ``chamfer_l1`` = (accuracy + completeness) / 2,
  ``chamfer_l2`` = (mean squared pred→gt + mean squared gt→pred) / 2,
  ``normal_consistency`` = (mean |cos| between each pred normal and its nearest gt point's normal
  + the same gt→pred) / 2 (absolute value: normal orientation is not penalised),
  ``fscore@δ`` = 2PR / (P + R) with precision P = fraction of pred points within δ of gt and recall R
  likewise gt→pred (0 when P + R = 0). Normal consistency is present only when both normal arrays are
  given.
* Empty prediction (no points, or a mesh with no faces / zero area), following Occupancy Networks:
  every point is treated as maximally far in the unit cube, i.e. accuracy = completeness = chamfer_l1
  = sqrt(3), chamfer_l2 = 3, normal_consistency = 0 and every F-score 0.
* ``mean_over_classes``: a shape-weighted mean within each class, then an unweighted mean over classes,
  so large classes do not dominate (the ShapeNet reporting convention).

Nearest neighbours use pykdtree: on the target machine it beat scipy's cKDTree (workers=-1) at both
build and query for 100k points (see benchmarks/chamfer.py). Both point sets are first put in a coarse
spatial-grid order (a radix sort of 15-bit cell keys, a few ms per 100k points): surface samples arrive in
random order, and sorted inputs let consecutive queries walk the same tree nodes, which roughly halves
query and build time. Every metric is a permutation-invariant mean, so the order is never undone.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pykdtree.kdtree import KDTree

from harness.geometry.mesh import sample_surface

_EMPTY_DISTANCE = math.sqrt(3.0)  # diagonal of the unit cube: the farthest two shapes can be apart
_LEAFSIZE = 32  # measured slightly faster than pykdtree's default 16 for 100k-point surface samples
_GRID_BITS = 5  # 32^3 cells: 15-bit keys, so numpy's stable argsort is a radix sort


def volumetric_iou(pred_occupancy: np.ndarray, gt_occupancy: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of binarised occupancies on the same points (see module docstring for the empty case)."""
    pred = np.asarray(pred_occupancy).reshape(-1) >= threshold
    gt = np.asarray(gt_occupancy).reshape(-1) >= 0.5
    if pred.shape != gt.shape:
        raise ValueError(f"occupancies differ in size: {pred.shape} vs {gt.shape}")
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return float(np.count_nonzero(pred & gt) / union)


def _empty_metrics(with_normals: bool, fscore_thresholds: Sequence[float]) -> dict[str, float]:
    out = {
        "accuracy": _EMPTY_DISTANCE,
        "completeness": _EMPTY_DISTANCE,
        "chamfer_l1": _EMPTY_DISTANCE,
        "chamfer_l2": 3.0,
    }
    if with_normals:
        out["normal_consistency"] = 0.0
    out.update({f"fscore@{t}": 0.0 for t in fscore_thresholds})
    return out


def _points(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"{name} must be [N, 3], got shape {a.shape}")
    return a


def _grid_order(points: np.ndarray) -> np.ndarray:
    """Permutation putting points in row-major order of a 32^3 grid over their bounding box."""
    lo = points.min(axis=0)
    extent = float((points.max(axis=0) - lo).max()) or 1.0
    cell = ((points - lo) * ((2**_GRID_BITS - 1) / extent)).astype(np.int16)
    key = (cell[:, 0] << 2 * _GRID_BITS) | (cell[:, 1] << _GRID_BITS) | cell[:, 2]
    return np.argsort(key, kind="stable")


def _unit(normals: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so non-unit input normals are fine."""
    n = np.asarray(normals)
    n = n if n.dtype == np.float32 else n.astype(np.float64)
    norm = np.sqrt(np.einsum("ij,ij->i", n, n))
    return n / np.where(norm > 0, norm, 1.0)[:, None]


def _mean_abs_dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.einsum("ij,ij->i", a, b)).mean(dtype=np.float64))


def surface_metrics(
    pred_points: np.ndarray,
    pred_normals: np.ndarray | None,
    gt_points: np.ndarray,
    gt_normals: np.ndarray | None,
    fscore_thresholds: Sequence[float] = (0.01,),
) -> dict[str, float]:
    """Accuracy, completeness, Chamfer-L1/L2, normal consistency and F-scores of two point sets."""
    pred = _points(pred_points, "pred_points")
    gt = _points(gt_points, "gt_points")
    with_normals = pred_normals is not None and gt_normals is not None
    if len(pred) == 0:
        return _empty_metrics(with_normals, fscore_thresholds)
    if len(gt) == 0:
        raise ValueError("gt_points is empty")
    # pykdtree needs one dtype for tree and queries; stay in float32 when both are (the sampling dtype),
    # which is faster and plenty precise for distances of unit-cube shapes.
    dtype = np.float32 if pred.dtype == np.float32 and gt.dtype == np.float32 else np.float64
    pred_order = _grid_order(pred)
    gt_order = _grid_order(gt)
    pred = np.ascontiguousarray(pred[pred_order], dtype=dtype)
    gt = np.ascontiguousarray(gt[gt_order], dtype=dtype)
    d_acc, i_acc = KDTree(gt, leafsize=_LEAFSIZE).query(pred, k=1)
    d_comp, i_comp = KDTree(pred, leafsize=_LEAFSIZE).query(gt, k=1)
    d_acc = d_acc.astype(np.float64)
    d_comp = d_comp.astype(np.float64)

    accuracy = float(d_acc.mean())
    completeness = float(d_comp.mean())
    out = {
        "accuracy": accuracy,
        "completeness": completeness,
        "chamfer_l1": 0.5 * (accuracy + completeness),
        "chamfer_l2": 0.5 * (float(np.dot(d_acc, d_acc)) / len(d_acc) + float(np.dot(d_comp, d_comp)) / len(d_comp)),
    }
    if with_normals:
        pn = _unit(_points(pred_normals, "pred_normals")[pred_order])
        gn = _unit(_points(gt_normals, "gt_normals")[gt_order])
        out["normal_consistency"] = 0.5 * (_mean_abs_dot(pn, gn[i_acc]) + _mean_abs_dot(gn, pn[i_comp]))
    for t in fscore_thresholds:
        precision = int(np.count_nonzero(d_acc <= t)) / len(d_acc)
        recall = int(np.count_nonzero(d_comp <= t)) / len(d_comp)
        total = precision + recall
        out[f"fscore@{t}"] = 2.0 * precision * recall / total if total > 0 else 0.0
    return out


def mesh_metrics(
    vertices: np.ndarray,
    faces: np.ndarray,
    gt_points: np.ndarray,
    gt_normals: np.ndarray | None,
    n_points: int = 100_000,
    rng: np.random.Generator | None = None,
    fscore_thresholds: Sequence[float] = (0.01,),
) -> dict[str, float]:
    """:func:`surface_metrics` on ``n_points`` area-uniform samples (with face normals) of a predicted mesh.

    ``rng=None`` uses a fixed seed so repeated evaluations of the same mesh give identical numbers.
    A mesh without faces or with zero area gets the empty-prediction convention.
    """
    rng = np.random.default_rng(0) if rng is None else rng
    faces = np.asarray(faces).reshape(-1, 3)
    vertices = np.asarray(vertices).reshape(-1, 3)
    if len(faces) == 0 or len(vertices) == 0:
        return _empty_metrics(gt_normals is not None, fscore_thresholds)
    try:
        points, normals, _ = sample_surface(vertices, faces, n_points, rng)
    except ValueError:  # zero surface area
        return _empty_metrics(gt_normals is not None, fscore_thresholds)
    return surface_metrics(points, normals, gt_points, gt_normals, fscore_thresholds)


def mean_over_classes(
    per_shape: list[dict[str, float]], classes: list[str]
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Per-class means (classes in first-seen order) and the unweighted mean over classes.

    A metric missing from some shapes is averaged over the shapes that have it; the overall mean of a
    metric is taken over the classes that have it.
    """
    if len(per_shape) != len(classes):
        raise ValueError(f"{len(per_shape)} shapes but {len(classes)} class labels")
    grouped: dict[str, dict[str, list[float]]] = {}
    for metrics, cls in zip(per_shape, classes):
        bucket = grouped.setdefault(cls, {})
        for key, value in metrics.items():
            bucket.setdefault(key, []).append(float(value))
    per_class = {cls: {k: float(np.mean(v)) for k, v in m.items()} for cls, m in grouped.items()}
    keys = dict.fromkeys(k for m in per_class.values() for k in m)
    overall = {k: float(np.mean([m[k] for m in per_class.values() if k in m])) for k in keys}
    return per_class, overall
