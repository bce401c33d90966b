"""Multiresolution IsoSurface Extraction (MISE), after Occupancy Networks (Mescheder et al., 2019).

A dense 128^3 grid costs 129^3 ≈ 2.1M network evaluations, almost all far from the surface. MISE
evaluates a coarse ``resolution0^3`` grid, then repeatedly halves the cell size only inside cells whose
corners straddle the threshold, evaluating just the grid points that are new there. Grid points that
are never evaluated take the trilinear interpolation of the coarser grid, which keeps them on the same
side of the threshold as their coarse cell, so marching cubes on the final dense grid only finds the
surface where it was resolved at full resolution.

Values live in logit space (as in Occupancy Networks): a sigmoid decoder's logit varies roughly linearly
with distance to the surface, so both the interpolated fill and marching cubes' linear vertex placement
are more accurate there than on saturated probabilities. Probabilities are clipped to
``[_EPS, 1 - _EPS]`` first so exact 0/1 outputs (analytic or voxel occupancies) stay finite.
"""
from __future__ import annotations

from itertools import product
from typing import Callable

import numpy as np

_EPS = 1e-6
# Padding value far below any clipped logit, so surfaces closed by the padding sit on the box boundary.
_OUTSIDE = -1e6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def _upsample(grid: np.ndarray) -> np.ndarray:
    """Trilinear 2x refinement of an (n+1)^3 vertex grid to (2n+1)^3 (separable midpoint averaging)."""
    for axis in range(3):
        shape = list(grid.shape)
        shape[axis] = 2 * shape[axis] - 1
        fine = np.empty(shape, dtype=grid.dtype)
        even = [slice(None)] * 3
        odd = [slice(None)] * 3
        even[axis] = slice(0, None, 2)
        odd[axis] = slice(1, None, 2)
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        fine[tuple(even)] = grid
        fine[tuple(odd)] = 0.5 * (grid[tuple(lo)] + grid[tuple(hi)])
        grid = fine
    return grid


def _straddling_cells(grid: np.ndarray, level: float) -> np.ndarray:
    """Boolean n^3: cells of an (n+1)^3 vertex grid with corners on both sides of ``level``."""
    inside = grid >= level
    n = grid.shape[0] - 1
    count = np.zeros((n, n, n), dtype=np.int8)
    for a, b, c in product((0, 1), repeat=3):
        count += inside[a : a + n, b : b + n, c : c + n]
    return (count > 0) & (count < 8)


def extract_mesh(
    occupancy_fn: Callable[[np.ndarray], np.ndarray],
    threshold: float = 0.2,
    resolution0: int = 32,
    upsampling_steps: int = 2,
    padding: float = 0.1,
    batch_points: int = 100_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Extract the ``threshold`` iso-surface of ``occupancy_fn`` over the padded box.

    ``occupancy_fn`` maps float32 [P, 3] points to [P] occupancy probabilities. The box is
    ``[-(0.5 + padding/2), 0.5 + padding/2]^3`` and the final grid has ``resolution0 * 2**upsampling_steps``
    cells per side. Returns ``(vertices [V,3] float32, faces [F,3] int64)`` with outward-facing triangles;
    both have zero rows when nothing crosses the threshold.
    """
    from skimage.measure import marching_cubes  # heavy import, only needed here

    if not _EPS < threshold < 1.0 - _EPS:
        raise ValueError(f"threshold must be a probability in ({_EPS}, {1 - _EPS}), got {threshold}")
    level = float(_logit(threshold))
    half = 0.5 + padding / 2.0

    def evaluate(index: np.ndarray, n: int) -> np.ndarray:
        """Logits at integer grid indices [P,3] of an n-cell grid, in batches of ``batch_points``."""
        points = (index * (2.0 * half / n) - half).astype(np.float32)
        out = [
            np.asarray(occupancy_fn(points[i : i + batch_points])).reshape(-1)
            for i in range(0, len(points), batch_points)
        ]
        return _logit(np.concatenate(out)) if out else np.zeros(0)

    n = resolution0
    axis = np.arange(n + 1)
    index = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
    grid = evaluate(index, n).reshape(n + 1, n + 1, n + 1)
    evaluated = np.ones(grid.shape, dtype=bool)

    for _ in range(upsampling_steps):
        active = _straddling_cells(grid, level)
        grid = _upsample(grid)
        was_evaluated = evaluated
        evaluated = np.zeros(grid.shape, dtype=bool)
        evaluated[::2, ::2, ::2] = was_evaluated
        n *= 2
        # The 3^3 fine points of every active cell (corners included: a corner may only have been
        # interpolated so far); the ones on shared faces also sharpen the neighbouring cells.
        needed = np.zeros(grid.shape, dtype=bool)
        for a, b, c in product((0, 1, 2), repeat=3):
            needed[a : a + n : 2, b : b + n : 2, c : c + n : 2] |= active
        todo = needed & ~evaluated
        index = np.argwhere(todo)
        grid[todo] = evaluate(index, n)  # argwhere and boolean indexing share C order
        evaluated |= todo

    if grid.max() < level:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
    # Pad with "certainly outside" so surfaces touching the box boundary are closed there.
    padded = np.pad(grid, 1, mode="constant", constant_values=_OUTSIDE)
    vertices, faces, _, _ = marching_cubes(padded, level)
    vertices = (vertices - 1.0) * (2.0 * half / n) - half
    # skimage orients triangles towards increasing values (the inside here); flip to face outward.
    return vertices.astype(np.float32), np.ascontiguousarray(faces[:, ::-1], dtype=np.int64)
