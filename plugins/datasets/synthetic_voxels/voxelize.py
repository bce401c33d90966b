"""Occupancy grids of watertight meshes, and their rotation about the up axis (numpy and libigl)."""
from __future__ import annotations

import numpy as np

UNSURE = 0.4  # fast winding numbers this close to 0.5 are recomputed exactly


def voxel_centres(resolution: int, padding: float) -> np.ndarray:
    """``[R]`` centre coordinates along each axis of the grid spanning ``[-(1 + padding) / 2, (1 + padding) / 2]``."""
    side = 1.0 + padding
    return (np.arange(resolution) + 0.5) / resolution * side - side / 2


def grid_points(resolution: int, padding: float) -> np.ndarray:
    """``[R^3, 3]`` voxel centres, x slowest and z fastest (the order of ``grid.reshape(-1)``)."""
    c = voxel_centres(resolution, padding)
    return np.stack(np.meshgrid(c, c, c, indexing="ij"), axis=-1).reshape(-1, 3)


def voxelize(vertices: np.ndarray, faces: np.ndarray, resolution: int, padding: float) -> np.ndarray:
    """``bool [R, R, R]`` (axes x, y, z): whether each voxel centre is inside the watertight mesh.

    The same test as :func:`harness.geometry.inside.contains` for watertight meshes (|winding number| > 0.5,
    libigl's exact solid-angle sum), made fast: centres outside the mesh's bounding box are outside, the rest
    get libigl's fast (Barnes-Hut) winding number, and only those it leaves near 0.5 are recomputed exactly.
    """
    import igl

    v = np.ascontiguousarray(vertices, dtype=np.float64)
    f = np.ascontiguousarray(faces, dtype=np.int64)
    points = grid_points(resolution, padding)
    box = np.all((points >= v.min(axis=0)) & (points <= v.max(axis=0)), axis=1)
    inside = np.zeros(len(points), dtype=bool)
    candidates = np.ascontiguousarray(points[box])
    if len(candidates) and len(f):
        winding = np.abs(igl.fast_winding_number(v, f, candidates))
        unsure = np.abs(winding - 0.5) < UNSURE
        if unsure.any():
            winding[unsure] = np.abs(igl.winding_number(v, f, np.ascontiguousarray(candidates[unsure])))
        inside[box] = winding > 0.5
    return inside.reshape(resolution, resolution, resolution)


def rotate_up(grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``grid`` (``[..., R, R, R]``, axes x, y, z) turned by a random angle about the y axis: each voxel takes
    the value of the nearest source voxel (empty where that falls outside the grid)."""
    resolution = grid.shape[-1]
    angle = rng.uniform(0, 2 * np.pi)
    centre = (resolution - 1) / 2
    i, k = np.meshgrid(np.arange(resolution) - centre, np.arange(resolution) - centre, indexing="ij")
    cos, sin = np.cos(angle), np.sin(angle)
    # the source of target (x, z) is the target turned back by the angle
    src_i = np.rint(cos * i - sin * k + centre).astype(np.int64)
    src_k = np.rint(sin * i + cos * k + centre).astype(np.int64)
    valid = (src_i >= 0) & (src_i < resolution) & (src_k >= 0) & (src_k < resolution)
    out = np.zeros_like(grid)
    ti, tk = np.nonzero(valid)
    out[..., ti, :, tk] = grid[..., src_i[valid], :, src_k[valid]]
    return out
