"""Geometry helpers against analytic answers: box distances, sphere/box containment, MISE on a sphere."""
from __future__ import annotations

import numpy as np
import pytest
import trimesh

from harness.geometry.distance import MeshDistance, point_mesh_distance
from harness.geometry.extraction import extract_mesh
from harness.geometry.inside import contains, is_watertight
from harness.geometry.mesh import normalize_mesh, sample_queries, sample_surface


def unit_cube() -> tuple[np.ndarray, np.ndarray]:
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    return np.asarray(box.vertices), np.asarray(box.faces)


def box_surface_distance(p: np.ndarray, half: float = 0.5) -> np.ndarray:
    """Analytic unsigned distance to the surface of the axis-aligned box [-half, half]^3."""
    q = np.abs(p) - half
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = -np.minimum(q.max(axis=1), 0.0)
    return np.where(q.max(axis=1) > 0, outside, inside)


def sphere(radius: float = 1.0, subdivisions: int = 4) -> tuple[np.ndarray, np.ndarray]:
    m = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(m.vertices), np.asarray(m.faces)


# --- normalize_mesh -------------------------------------------------------------------------------


def test_normalize_mesh_fits_unit_cube_and_inverts():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(500, 3)) * [3.0, 1.0, 0.5] + [10.0, -4.0, 2.0]
    vn, loc, scale = normalize_mesh(v)
    lo, hi = vn.min(axis=0), vn.max(axis=0)
    assert np.allclose(lo + hi, 0.0, atol=1e-12)  # centred on the bbox centre
    assert (hi - lo).max() == pytest.approx(1.0, abs=1e-12)
    assert lo.min() >= -0.5 - 1e-12 and hi.max() <= 0.5 + 1e-12
    assert np.allclose(loc, (v.min(axis=0) + v.max(axis=0)) / 2)
    assert scale == pytest.approx((v.max(axis=0) - v.min(axis=0)).max())
    assert np.allclose(vn * scale + loc, v, atol=1e-12)


def test_normalize_mesh_rejects_degenerate():
    with pytest.raises(ValueError):
        normalize_mesh(np.ones((4, 3)))


# --- sampling -------------------------------------------------------------------------------------


def test_sample_surface_points_lie_on_mesh_with_face_normals():
    v, f = sphere(subdivisions=3)
    points, normals, face_index = sample_surface(v, f, 5000, np.random.default_rng(1))
    assert points.shape == (5000, 3) and points.dtype == np.float32
    assert normals.dtype == np.float32 and face_index.dtype == np.int64
    d, _, _ = point_mesh_distance(v, f, points)
    assert d.max() < 1e-6
    # Each sample lies on its reported face, whose unit normal points outward on a sphere.
    d_face, _, _ = point_mesh_distance(v, f[face_index], points)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    ref = trimesh.Trimesh(v, f, process=False).face_normals[face_index]
    assert np.allclose(normals, ref, atol=1e-6)
    assert d_face.max() < 1e-6
    assert (np.einsum("ij,ij->i", normals, points) > 0).all()


def test_sample_surface_is_area_weighted():
    # Two disjoint squares of area 1 and 3 (two triangles each): expect samples in ratio 1:3.
    s = np.sqrt(3.0)
    v = np.array(
        [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [5, 0, 0], [5 + s, 0, 0], [5 + s, s, 0], [5, s, 0]],
        dtype=float,
    )
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    n = 200_000
    points, _, face_index = sample_surface(v, f, n, np.random.default_rng(2))
    big = np.count_nonzero(face_index >= 2) / n
    assert big == pytest.approx(0.75, abs=0.005)  # binomial std ~0.001
    assert np.array_equal(face_index >= 2, points[:, 0] >= 5)
    # Uniform within a square: mean of the small square's samples is its centre.
    assert np.allclose(points[face_index < 2, :2].mean(axis=0), 0.5, atol=0.01)


def test_sample_queries_split_and_ranges():
    v, f = sphere(radius=0.4, subdivisions=3)
    n, padding, sigma = 10_000, 0.1, 0.01
    q = sample_queries(v, f, n, np.random.default_rng(3), padding=padding, near_fraction=0.4, near_sigma=sigma)
    assert q.shape == (n, 3) and q.dtype == np.float32
    uniform, near = q[:6000], q[6000:]
    assert np.abs(uniform).max() <= 0.5 + padding / 2
    assert np.abs(uniform).max() > 0.5  # uses the padded margin
    d_near, _, _ = point_mesh_distance(v, f, near)
    # |N(0, sigma^2 I)| projected on the normal: mean sigma * sqrt(2/pi) ~ 0.8 sigma.
    assert d_near.mean() == pytest.approx(sigma * np.sqrt(2 / np.pi), rel=0.1)
    d_uniform, _, _ = point_mesh_distance(v, f, uniform)
    assert d_uniform.mean() > 5 * sigma


# --- distance -------------------------------------------------------------------------------------


def test_mesh_distance_matches_analytic_box_distance():
    v, f = unit_cube()
    rng = np.random.default_rng(4)
    p = rng.uniform(-1.5, 1.5, size=(20_000, 3))
    md = MeshDistance(v, f)
    d, closest, face_index = md.query(p)
    assert d.dtype == np.float64 and closest.shape == (20_000, 3) and face_index.shape == (20_000,)
    assert np.abs(d - box_surface_distance(p)).max() < 1e-12
    assert np.allclose(np.linalg.norm(p - closest, axis=1), d, atol=1e-12)
    assert np.allclose(box_surface_distance(closest), 0.0, atol=1e-12)  # closest points on the surface
    # Reported face really attains the distance.
    d_face, _, _ = point_mesh_distance(v, f[face_index[:200]], p[:200])
    assert np.abs(d_face - d[:200]).max() < 1e-12


def test_mesh_distance_hand_points_and_reuse():
    md = MeshDistance(*unit_cube())
    p = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [1.5, 1.5, 1.5], [0.5, 0.5, 0.5], [0.5, 1.5, 0.0]])
    d, _, _ = md.query(p.astype(np.float32))
    assert np.allclose(d, [0.5, 1.5, np.sqrt(3.0), 0.0, 1.0])
    d2, _, _ = md.query(p)  # the tree is reused across calls
    assert np.allclose(d, d2)
    assert md.query(np.zeros((0, 3)))[0].shape == (0,)


# --- contains -------------------------------------------------------------------------------------


@pytest.mark.parametrize("watertight", [None, True, False])
def test_contains_sphere(watertight):
    v, f = sphere(radius=1.0, subdivisions=4)
    rng = np.random.default_rng(5)
    dirs = rng.normal(size=(4000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    radii = np.concatenate([rng.uniform(0.0, 0.98, 2000), rng.uniform(1.02, 3.0, 2000)])
    inside = contains(v, f, dirs * radii[:, None], watertight=watertight)
    assert inside.dtype == bool
    assert np.array_equal(inside, radii < 1.0)


def test_contains_box_watertight_and_inverted():
    v, f = unit_cube()
    assert is_watertight(v, f)
    p = np.random.default_rng(6).uniform(-1.0, 1.0, size=(5000, 3))
    keep = np.abs(np.abs(p).max(axis=1) - 0.5) > 1e-3  # avoid ties on the surface itself
    p = p[keep]
    truth = np.abs(p).max(axis=1) < 0.5
    assert np.array_equal(contains(v, f, p), truth)
    assert np.array_equal(contains(v, f[:, ::-1], p), truth)  # inside-out winding


def test_contains_box_with_missing_face():
    v, f = unit_cube()
    normals = trimesh.Trimesh(v, f, process=False).face_normals
    open_box = f[~np.isclose(normals[:, 2], 1.0)]  # remove the two +z triangles
    assert len(open_box) == 10 and not is_watertight(v, open_box)
    rng = np.random.default_rng(7)
    well_inside = rng.uniform(-0.3, 0.3, size=(1000, 3)) - [0, 0, 0.1]
    outside = rng.uniform(-0.4, 0.4, size=(1000, 3)) + [0, 0, 1.5]
    beside = rng.uniform(-0.4, 0.4, size=(1000, 3)) + [1.5, 0, 0]
    assert contains(v, open_box, well_inside).all()
    assert not contains(v, open_box, outside).any()
    assert not contains(v, open_box, beside).any()
    assert contains(v, f, np.zeros((0, 3))).shape == (0,)


# --- extraction -----------------------------------------------------------------------------------


def test_extract_mesh_sphere_binary_occupancy():
    r = 0.35
    calls = []

    def occupancy(p: np.ndarray) -> np.ndarray:
        assert p.dtype == np.float32 and p.shape[1] == 3
        calls.append(len(p))
        return (np.linalg.norm(p, axis=1) <= r).astype(np.float32)

    v, f = extract_mesh(occupancy, threshold=0.5, resolution0=32, upsampling_steps=2, padding=0.1)
    assert v.dtype == np.float32 and f.dtype == np.int64 and len(f) > 1000
    cell = 1.1 / 128
    radius = np.linalg.norm(v, axis=1)
    assert np.abs(radius - r).max() <= cell
    mesh = trimesh.Trimesh(v, f)
    assert mesh.is_watertight
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * r**3, rel=0.02)  # positive: faces point outward
    evaluated = sum(calls)
    assert evaluated < 0.1 * 129**3
    assert max(calls) <= 100_000  # batch_points respected

    # Same mesh as evaluating the dense 128^3 grid: MISE only skips cells without the surface.
    v_dense, f_dense = extract_mesh(occupancy, threshold=0.5, resolution0=128, upsampling_steps=0)
    assert len(f_dense) == len(f)
    assert trimesh.Trimesh(v_dense, f_dense).volume == pytest.approx(mesh.volume, rel=1e-9)


def test_extract_mesh_sigmoid_occupancy_logit_placement():
    # p = sigmoid(k (r - |x|)): the threshold-t level set is the sphere of radius r - logit(t)/k exactly,
    # and linear interpolation in logit space recovers it to far better than a grid cell.
    r, k, t = 0.3, 50.0, 0.2
    v, f = extract_mesh(lambda p: 1 / (1 + np.exp(-k * (r - np.linalg.norm(p, axis=1)))), threshold=t)
    target = r - np.log(t / (1 - t)) / k
    assert np.abs(np.linalg.norm(v, axis=1) - target).max() < 1e-3


def test_extract_mesh_empty_and_full():
    v, f = extract_mesh(lambda p: np.zeros(len(p)))
    assert v.shape == (0, 3) and f.shape == (0, 3)
    v, f = extract_mesh(lambda p: np.ones(len(p)), resolution0=8, upsampling_steps=1, padding=0.1)
    # Everything inside: the padding closes the surface on the box boundary.
    assert trimesh.Trimesh(v, f).volume == pytest.approx(1.1**3, rel=1e-5)
    assert np.abs(v).max() == pytest.approx(0.55, abs=1e-5)
