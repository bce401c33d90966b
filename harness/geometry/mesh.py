"""Mesh normalisation and sampling in the Occupancy Networks conventions.

Every shape lives in the unit cube ``[-0.5, 0.5]^3`` after :func:`normalize_mesh`; query points are
drawn from the padded box of side ``1 + padding`` around it, so the decoder also sees free space
that surrounds the object.
"""
from __future__ import annotations

import numpy as np


def normalize_mesh(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre on the bounding-box centre and divide by the largest extent.

    Returns ``(v_norm, loc, scale)`` with ``v = v_norm * scale + loc``; the longest side of the
    normalised bounding box spans exactly ``[-0.5, 0.5]``. Computed in float64 so the inverse is exact
    to rounding regardless of the input dtype.
    """
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"vertices must be a non-empty [V, 3] array, got shape {v.shape}")
    lo, hi = v.min(axis=0), v.max(axis=0)
    loc = (lo + hi) / 2.0
    scale = float((hi - lo).max())
    if not scale > 0.0:
        raise ValueError("degenerate mesh: all vertices coincide")
    return (v - loc) / scale, loc, scale


def _face_geometry(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Triangle corners [F,3,3] (float64), doubled-area cross products [F,3] and areas [F]."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    tri = v[f]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return tri, cross, 0.5 * np.linalg.norm(cross, axis=1)


def sample_surface(
    vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` points uniformly with respect to surface area.

    Faces are picked with probability proportional to their area, then a uniform barycentric point is
    taken inside each (a unit-square sample folded onto the triangle, so no rejection loop). Returns
    ``(points [n,3] float32, unit face normals [n,3] float32, face_index [n] int64)``.
    """
    tri, cross, area = _face_geometry(vertices, faces)
    total = area.sum() if len(area) else 0.0
    if n > 0 and not total > 0.0:
        raise ValueError("cannot sample a mesh with zero surface area")
    if n == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32), np.zeros(0, np.int64)
    cdf = np.cumsum(area)
    # searchsorted on the CDF instead of rng.choice(p=...): same distribution, no normalisation copy,
    # and clipping guards against the last CDF entry rounding below total.
    face_index = np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"), len(area) - 1)
    uv = rng.random((n, 2))
    flip = uv.sum(axis=1) > 1.0
    uv[flip] = 1.0 - uv[flip]
    t = tri[face_index]
    points = t[:, 0] + uv[:, :1] * (t[:, 1] - t[:, 0]) + uv[:, 1:] * (t[:, 2] - t[:, 0])
    normals = cross[face_index] / (2.0 * area[face_index, None])
    return points.astype(np.float32), normals.astype(np.float32), face_index.astype(np.int64)


def sample_queries(
    vertices: np.ndarray,
    faces: np.ndarray,
    n: int,
    rng: np.random.Generator,
    padding: float = 0.1,
    near_fraction: float = 0.5,
    near_sigma: float = 0.01,
) -> np.ndarray:
    """Training/evaluation query points: uniform in the padded box plus jittered surface samples.

    The first ``n - round(near_fraction * n)`` rows are uniform in ``[-(0.5 + padding/2), 0.5 + padding/2]^3``
    (box side ``1 + padding``, as in Occupancy Networks); the rest are surface samples plus isotropic
    Gaussian noise of std ``near_sigma``, which concentrate supervision where occupancy changes.
    Rows are not shuffled so callers can tell the two parts apart. Returns float32 [n, 3].
    """
    if not 0.0 <= near_fraction <= 1.0:
        raise ValueError(f"near_fraction must be in [0, 1], got {near_fraction}")
    n_near = int(round(near_fraction * n))
    half = 0.5 + padding / 2.0
    uniform = rng.uniform(-half, half, size=(n - n_near, 3))
    near, _, _ = sample_surface(vertices, faces, n_near, rng)
    near = near + rng.normal(0.0, near_sigma, size=near.shape)
    return np.concatenate([uniform, near]).astype(np.float32)
