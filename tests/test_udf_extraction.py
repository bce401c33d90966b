"""UDF surface extraction (gradient-direction marching cubes, NDF dense clouds) and the scene metrics."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.spatial import cKDTree

from harness.geometry import udf_extraction as ue
from harness.geometry.udf_extraction import (
    autograd_field,
    dense_point_cloud,
    evaluate_udf_grid,
    extract_udf_mesh,
    finite_difference_field,
    mesh_udf_grid,
    mesh_udf_grid_per_cell,
    polygonise_cells,
)
from harness.metrics.scene import REPORTED_UNITS, mesh_scene_metrics, scene_metrics, semantic_metrics

RADIUS = 0.3
DISC_Z = 0.0123  # off the grid planes: a surface through grid points has d = 0 and no gradient there


def sphere_field(p: np.ndarray, r: float = RADIUS) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(p, dtype=np.float64)
    norm = np.linalg.norm(p, axis=1)
    signed = norm - r
    grad = p * (np.sign(signed) / np.maximum(norm, 1e-12))[:, None]
    return np.abs(signed).astype(np.float32), grad.astype(np.float32)


def disc_closest(p: np.ndarray, r: float = RADIUS) -> np.ndarray:
    """Closest points on the open disc {z = DISC_Z, x^2 + y^2 <= r^2}."""
    q = np.asarray(p, dtype=np.float64).copy()
    rho = np.linalg.norm(q[:, :2], axis=1)
    q[:, :2] *= np.minimum(1.0, r / np.maximum(rho, 1e-12))[:, None]
    q[:, 2] = DISC_Z
    return q


def disc_field(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = np.asarray(p, dtype=np.float64) - disc_closest(p)
    d = np.linalg.norm(diff, axis=1)
    return d.astype(np.float32), (diff / np.maximum(d, 1e-12)[:, None]).astype(np.float32)


def disc_udf(p: np.ndarray) -> np.ndarray:
    return disc_field(p)[0]


def sphere_samples(n: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal((n, 3))
    return (RADIUS * v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def disc_samples(n: int, rng: np.random.Generator) -> np.ndarray:
    rho = RADIUS * np.sqrt(rng.random(n))
    phi = 2 * np.pi * rng.random(n)
    return np.stack([rho * np.cos(phi), rho * np.sin(phi), np.full(n, DISC_Z)], axis=1).astype(np.float32)


def canonical_triangles(vertices: np.ndarray, faces: np.ndarray, oriented: bool = False) -> set:
    """Triangles as position triples rounded to 1e-6, rotated to a canonical start (or sorted)."""
    out = set()
    for tri in np.round(np.asarray(vertices, dtype=np.float64)[faces], 6):
        rows = [tuple(x) for x in tri]
        if oriented:
            k = rows.index(min(rows))
            out.add(tuple(rows[k:] + rows[:k]))
        else:
            out.add(tuple(sorted(rows)))
    return out


def area(vertices: np.ndarray, faces: np.ndarray) -> float:
    tri = np.asarray(vertices, dtype=np.float64)[faces]
    return 0.5 * float(np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum())


def vertex_ids(positions: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """The index of the vertex at each position (float32 output vs float64 references: within 1e-5)."""
    dist, idx = cKDTree(np.asarray(vertices, dtype=np.float64)).query(np.asarray(positions, dtype=np.float64))
    assert dist.max() < 1e-5
    return idx


def triangles_by_cell(triangles: np.ndarray, ids: np.ndarray, lo: float, voxel: float) -> dict:
    """Cell (from the centroid) -> triangles as vertex-id triples; ``triangles`` [T, 3, 3] positions."""
    out: dict = {}
    cells = np.floor((np.asarray(triangles, dtype=np.float64).mean(axis=1) - lo) / voxel).astype(int)
    for c, t in zip(map(tuple, cells), np.asarray(ids).reshape(-1, 3)):
        out.setdefault(c, []).append(tuple(int(i) for i in t))
    return out


def mesh_by_cell(vertices: np.ndarray, faces: np.ndarray, lo: float, voxel: float) -> dict:
    return triangles_by_cell(np.asarray(vertices)[faces], faces, lo, voxel)


def boundary(triangles: list) -> set:
    """Directed edges used once within a patch: the polygon outlines, whatever the triangulation."""
    edges = Counter()
    for a, b, c in triangles:
        for e in ((a, b), (b, c), (c, a)):
            edges[e] += 1
    return {e for e, k in edges.items() if k == 1 and (e[1], e[0]) not in edges}


# ----------------------------------------------------------------------------------------------------
# The case table and the vectorised polygonisation.


def _dense_cells(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Corner ids and values [A, 8] of every cell of a dense (n, n, n) grid of values."""
    n = values.shape[0]
    r = n - 1
    grid = ue.UDFGrid(values.ravel(), r, 0.0, 1.0, np.full(n**3, -1), np.zeros((0, 3)), None, 1)
    corners = ue._cell_corners(grid, np.arange(r**3))
    return corners, values.ravel()[corners]


def test_case_table_gives_closed_consistently_oriented_surfaces():
    """Random signed fields (ambiguous faces and cells included), positive on the box boundary: every
    directed edge must be matched by exactly one reverse edge (closed, oriented, no cracks)."""
    rng = np.random.default_rng(0)
    table, counts = ue.case_table()
    assert counts[0] == counts[255] == 0 and counts.max() <= 5 and (table[counts == 0] == -1).all()
    for _ in range(3):
        values = rng.standard_normal((7, 7, 7))
        for axis in range(3):
            values = np.moveaxis(values, axis, 0)
            values[0] = values[-1] = 1.0
            values = np.moveaxis(values, 0, axis)
        corners, v = _dense_cells(values)
        _, faces = polygonise_cells(corners, v < 0, np.abs(v), 7, 0.0, 1.0)
        directed = Counter((int(a), int(b)) for f in faces for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])))
        assert len(faces) > 100
        assert max(directed.values()) == 1
        assert all(directed[(b, a)] == 1 for a, b in directed)


def test_polygonisation_matches_skimage_marching_cubes_cell_by_cell():
    """On a smooth signed field the per-cell polygons (outlines, with orientation) and the vertices equal
    scikit-image's Lorensen marching cubes; only the triangulation inside a polygon may differ."""
    from skimage.measure import marching_cubes

    n = 15
    x = np.linspace(0.0, 1.0, n)
    X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
    values = np.sqrt((X - 0.52) ** 2 + (Y - 0.47) ** 2 + 1.7 * (Z - 0.5) ** 2) - 0.33 + 0.03 * np.sin(9 * X)
    corners, v = _dense_cells(values)
    verts, faces = polygonise_cells(corners, v < 0, np.abs(v), n, 0.0, 1.0 / (n - 1))
    sk_verts, sk_faces, _, _ = marching_cubes(values, 0.0, spacing=(1.0 / (n - 1),) * 3, method="lorensen")
    assert len(faces) > 300
    sk_ids = vertex_ids(sk_verts, verts)
    assert len(sk_verts) == len(verts) and len(np.unique(sk_ids)) == len(verts)  # the same vertices
    ours = mesh_by_cell(verts, faces, 0.0, 1.0 / (n - 1))
    theirs = triangles_by_cell(sk_verts[sk_faces], sk_ids[sk_faces], 0.0, 1.0 / (n - 1))
    assert ours.keys() == theirs.keys()
    for cell in ours:
        assert boundary(ours[cell]) == boundary(theirs[cell]), cell


# ----------------------------------------------------------------------------------------------------
# Gradient-direction marching cubes on UDFs.


def _skimage_per_cell(field, resolution: int, threshold: float) -> np.ndarray:
    """Independent per-cell reference: pseudo-signs computed here, each active cell meshed on its own by
    scikit-image's marching cubes on its 2x2x2 block. Returns the triangles' positions [T, 3, 3]."""
    from skimage.measure import marching_cubes

    voxel = 1.0 / resolution
    out = []
    for i in range(resolution):
        for j in range(resolution):
            for k in range(resolution):
                origin = -0.5 + voxel * np.array([i, j, k])
                offsets = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
                d, g = field(origin + voxel * offsets)
                if d.min() >= threshold:
                    continue
                s = np.where(g @ g[np.argmin(d)] < 0, -1.0, 1.0)
                block = (s * d).reshape(2, 2, 2)
                if block.min() >= 0 or block.max() < 0:
                    continue
                vv, ff, _, _ = marching_cubes(block, 0.0, method="lorensen")
                out.append(origin + vv[ff] * voxel)
    return np.concatenate(out)


@pytest.mark.parametrize("field", [sphere_field, disc_field], ids=["sphere", "disc"])
def test_vectorised_extraction_equals_per_cell_references(field):
    resolution = 12
    grid = evaluate_udf_grid(field, resolution, keep_gradients_below=0.5)
    verts, faces = mesh_udf_grid(grid)
    assert len(faces) > 50
    # the module's own per-cell loop: the very same triangles
    loop_v, loop_f = mesh_udf_grid_per_cell(grid)
    assert canonical_triangles(verts, faces, oriented=True) == canonical_triangles(loop_v, loop_f, oriented=True)
    # an independent one (pseudo-signs here, scikit-image per cell): same polygons in every cell
    ours = mesh_by_cell(verts, faces, -0.5, 1.0 / resolution)
    sk_tri = _skimage_per_cell(field, resolution, 2.0 / resolution)
    theirs = triangles_by_cell(sk_tri, vertex_ids(sk_tri.reshape(-1, 3), verts), -0.5, 1.0 / resolution)
    assert ours.keys() == theirs.keys()
    for cell in ours:
        assert boundary(ours[cell]) == boundary(theirs[cell]), cell
    # vertices are shared between cells: fewer vertices than triangle corners, none unreferenced
    assert len(verts) < 0.6 * faces.size and np.unique(faces).size == len(verts)


def test_pseudo_sign_flips_exactly_across_the_surface():
    """In every active cell, a corner is pseudo-negative iff it lies on the other side of the surface than
    the reference corner (sphere: inside vs outside; disc: above vs below, away from the rim)."""
    for field, side, keep in [
        (sphere_field, lambda p: np.linalg.norm(p, axis=-1) < RADIUS, None),
        (disc_field, lambda p: p[..., 2] > DISC_Z, lambda p: np.linalg.norm(p[..., :2], axis=-1).max(1) < 0.25),
    ]:
        grid = evaluate_udf_grid(field, 16, keep_gradients_below=1.0)
        cells = ue._active_cells(grid, 2.0 * grid.voxel)
        corners = ue._cell_corners(grid, cells)
        d = grid.distance[corners]
        negative = ue._pseudo_negative(d, grid.gradients(corners.ravel()).reshape(-1, 8, 3), "min")
        pts = grid.points(corners)
        s = side(pts)
        expected = s != s[np.arange(len(s)), np.argmin(d, axis=1)][:, None]
        rows = slice(None) if keep is None else keep(pts)
        assert expected[rows].any() and not expected[rows].all()
        np.testing.assert_array_equal(negative[rows], expected[rows])


def test_sphere_udf_mesh_lies_on_the_surface():
    resolution = 32
    voxel = 1.0 / resolution
    verts, faces = extract_udf_mesh(sphere_field, resolution)
    assert verts.dtype == np.float32 and faces.dtype == np.int64 and faces.shape[1] == 3
    assert np.abs(np.linalg.norm(verts, axis=1) - RADIUS).max() < 0.05 * voxel
    rng = np.random.default_rng(0)
    m = mesh_scene_metrics(verts, faces, sphere_samples(20_000, rng), n_points=20_000, rng=rng)
    assert m["cd_l1"] < 0.2 * voxel and m["f1_2delta"] > 0.99
    # for an exact UDF the corner partition does not depend on the reference corner, only the polarity
    # (so ambiguous faces may be split the other way): same vertices, nearly the same area
    v2, f2 = extract_udf_mesh(sphere_field, resolution, reference="first")
    np.testing.assert_array_equal(np.unique(verts, axis=0), np.unique(v2, axis=0))
    assert area(v2, f2) == pytest.approx(area(verts, faces), rel=1e-2)


def test_open_disc_udf_mesh_lies_on_the_disc():
    resolution = 32
    voxel = 1.0 / resolution
    verts, _ = extract_udf_mesh(disc_field, resolution)
    d = disc_udf(verts)
    # interior vertices exactly on the plane; the pseudo-sign adds a brim of at most ~1 voxel at the rim
    assert np.median(d) < 1e-3 * voxel and d.max() < 1.5 * voxel
    # the exact edge test removes the brim and keeps the disc
    fv, ff = extract_udf_mesh(disc_field, resolution, max_edge_ratio=1.0)
    assert disc_udf(fv).max() < 0.01 * voxel
    assert 0.85 * np.pi * RADIUS**2 < area(fv, ff) <= np.pi * RADIUS**2
    rng = np.random.default_rng(1)
    m = mesh_scene_metrics(fv, ff, disc_samples(20_000, rng), n_points=20_000, rng=rng)
    assert m["cd_l1"] < 0.3 * voxel and m["f1_2delta"] > 0.95
    # the vertex-distance filter (one more evaluation) does the same job
    gv, _ = extract_udf_mesh(disc_field, resolution, max_vertex_distance=0.01 * voxel)
    assert disc_udf(gv).max() <= 0.01 * voxel and len(gv) > 0.8 * len(fv)


def test_distance_only_screening_and_gradient_fallbacks():
    """``udf=`` screens the grid with distances only, gradients then only at active corners; finite
    differences and autograd give the same mesh as the analytic gradients."""
    import torch

    resolution = 16
    calls: list[int] = []

    def counted(p):
        calls.append(len(p))
        return disc_field(p)

    ref_v, ref_f = extract_udf_mesh(disc_field, resolution)
    v, f = extract_udf_mesh(counted, resolution, udf=disc_udf)
    assert canonical_triangles(v, f) == canonical_triangles(ref_v, ref_f)
    assert sum(calls) < 0.25 * (resolution + 1) ** 3

    fd_v, fd_f = extract_udf_mesh(finite_difference_field(disc_udf, 1e-4), resolution)
    assert canonical_triangles(fd_v, fd_f) == canonical_triangles(ref_v, ref_f)

    def torch_sphere(x):
        return (x.norm(dim=1) - RADIUS).abs()

    ag_v, ag_f = extract_udf_mesh(autograd_field(torch_sphere), resolution, udf=ue.torch_distance(torch_sphere))
    sp_v, sp_f = extract_udf_mesh(sphere_field, resolution)
    assert canonical_triangles(ag_v, ag_f) == canonical_triangles(sp_v, sp_f)
    p = np.random.default_rng(0).uniform(-0.5, 0.5, (50, 3)).astype(np.float32)
    with torch.no_grad():  # works inside an evaluation loop's no_grad too
        np.testing.assert_allclose(autograd_field(torch_sphere)(p)[1], sphere_field(p)[1], atol=1e-5)


def test_nothing_to_extract():
    far = lambda p: (np.full(len(p), 1.0, np.float32), np.tile(np.float32([1, 0, 0]), (len(p), 1)))
    v, f = extract_udf_mesh(far, 8)
    assert v.shape == (0, 3) and f.shape == (0, 3)


def test_dense_point_cloud_converges_to_the_surface():
    rng = np.random.default_rng(0)
    # a field that underestimates the distance by half: each projection step halves the error
    half = lambda p: (0.5 * sphere_field(p)[0], sphere_field(p)[1])
    start = rng.uniform(-0.5, 0.5, (500, 3)).astype(np.float32)
    errors = [np.abs(np.linalg.norm(ue.project_to_surface(half, start, k)[0], axis=1) - RADIUS) for k in (0, 1, 4)]
    np.testing.assert_allclose(errors[1], errors[0] / 2, atol=1e-6)
    np.testing.assert_allclose(errors[2], errors[0] / 16, atol=1e-6)
    pts = dense_point_cloud(sphere_field, 3000, threshold=1e-3, steps=3, filter_distance=0.05, rng=rng)
    assert pts.shape == (3000, 3) and pts.dtype == np.float32
    assert np.abs(np.linalg.norm(pts, axis=1) - RADIUS).max() < 1e-3
    # and covers it: every ground-truth sample has a cloud point nearby
    m = scene_metrics(pts, sphere_samples(3000, rng), delta=0.04)  # mean spacing ~0.02
    assert m["f1_delta"] > 0.95
    # an open surface too (the projection lands on the rim from outside)
    disc = dense_point_cloud(disc_field, 2000, threshold=1e-3, steps=3, filter_distance=0.05, rng=rng)
    assert disc_udf(disc).max() < 1e-3
    assert scene_metrics(disc, disc_samples(2000, rng), delta=0.03)["f1_delta"] > 0.9
    with pytest.raises(RuntimeError, match="filter_distance"):
        dense_point_cloud(lambda p: (np.ones(len(p)), np.ones((len(p), 3))), 10, steps=1)


# ----------------------------------------------------------------------------------------------------
# Scene metrics against hand-computed values.


def test_chamfer_and_f1_hand_computed():
    pred = np.array([[0, 0, 0], [1, 0, 0]], dtype=np.float64)
    gt = np.array([[0, 0, 0], [0, 2, 0]], dtype=np.float64)
    m = scene_metrics(pred, gt, delta=0.5)
    # pred->gt: 0, 1; gt->pred: 0, 2
    assert m["cd_l1"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["cd_l2"] == pytest.approx((0.5 + 2.0) / 2)
    assert m["f1_delta"] == pytest.approx(0.5)  # P = 1/2, R = 1/2
    assert m["f1_2delta"] == pytest.approx(2 * 1.0 * 0.5 / 1.5)  # at 1.0: P = 1, R = 1/2
    assert REPORTED_UNITS == {"cd_l1": 1e-2, "cd_l2": 1e-4}
    empty = scene_metrics(np.zeros((0, 3)), gt)
    assert empty["cd_l1"] == pytest.approx(np.sqrt(3)) and empty["f1_delta"] == 0.0


def test_semantic_metrics_hand_computed_with_missing_class_and_ignored_labels():
    # points 1 apart, delta 0.1: a predicted point only matches the ground-truth point it sits on
    pts = np.arange(6, dtype=np.float64)[:, None] * np.array([[1.0, 0.0, 0.0]])
    gt_labels = np.array([0, 0, 1, 1, 2, -1])
    pred_labels = np.array([0, 1, 1, 1, 0, 2])
    m = semantic_metrics(pts, pred_labels, pts, gt_labels, delta=0.1, num_classes=4)
    # targets [0,0,1,1,2] (the last point is ignored); IoU_0 = 1/3, IoU_1 = 2/3, IoU_2 = 0 (never
    # predicted where it is the target), class 3 absent from both: skipped
    assert m["miou"] == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    np.testing.assert_allclose(m["iou_per_class"][:3], [1 / 3, 2 / 3, 0.0])
    assert np.isnan(m["iou_per_class"][3])
    # F1 per class: 0: P {0,4} vs G {0,1} -> 1/2, 1/2 -> 0.5; 1: P {1,2,3} vs G {2,3} -> 2/3, 1 -> 0.8;
    # 2: no predicted point (point 5 is ignored) vs G {4} -> 0
    assert m["mf1_delta"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    # the label predicted at an ignored point never matters
    m2 = semantic_metrics(pts, np.array([0, 1, 1, 1, 0, 3]), pts, gt_labels, delta=0.1, num_classes=4)
    assert m2["miou"] == m["miou"] and m2["mf1_delta"] == m["mf1_delta"]
    with pytest.raises(ValueError, match="num_classes"):
        semantic_metrics(pts, pred_labels, pts, gt_labels, num_classes=2)


def test_mf1_uses_the_distance_threshold_per_class():
    gt = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    gt_labels = np.array([0, 1])
    pred = gt + np.array([0.07, 0.0, 0.0])  # 0.07 from its own point: outside delta, inside 2 delta
    m = scene_metrics(pred, gt, np.array([0, 1]), gt_labels, delta=0.05)
    assert m["mf1_delta"] == 0.0 and m["mf1_2delta"] == 1.0 and m["miou"] == 1.0
    # swapping the labels: nearest targets are 0, 1 but predictions 1, 0 -> nothing right
    m = scene_metrics(pred, gt, np.array([1, 0]), gt_labels, delta=0.05)
    assert m["miou"] == 0.0 and m["mf1_2delta"] == 0.0
