"""Exact unsigned point-to-mesh distances through libigl's AABB tree.

The tree is built once per mesh in :class:`MeshDistance` and reused for every query batch (UDF targets,
evaluation of many point sets against one mesh); ``igl.point_mesh_squared_distance`` would rebuild it
on each call. Queries are exact point-to-triangle distances, parallelised over points inside libigl.
"""
from __future__ import annotations

import igl
import numpy as np


class MeshDistance:
    """Closest-point queries against one triangle mesh; build once, query many times."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        # libigl wants float64/int64 C-contiguous arrays; convert once here, not per query.
        self.vertices = np.ascontiguousarray(vertices, dtype=np.float64)
        self.faces = np.ascontiguousarray(faces, dtype=np.int64)
        if self.vertices.ndim != 2 or self.vertices.shape[1] != 3:
            raise ValueError(f"vertices must be [V, 3], got shape {self.vertices.shape}")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            raise ValueError(f"faces must be a non-empty [F, 3] array, got shape {self.faces.shape}")
        self._tree = igl.AABB()
        self._tree.init(self.vertices, self.faces)

    def query(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(distances [P] float64, closest_points [P,3] float64, face_index [P] int64)``."""
        p = np.ascontiguousarray(points, dtype=np.float64)
        if p.ndim != 2 or p.shape[1] != 3:
            raise ValueError(f"points must be [P, 3], got shape {p.shape}")
        sq, face_index, closest = self._tree.squared_distance(self.vertices, self.faces, p)
        return np.sqrt(sq), closest, face_index


def point_mesh_distance(
    vertices: np.ndarray, faces: np.ndarray, points: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-shot :meth:`MeshDistance.query`; build a :class:`MeshDistance` yourself to reuse the tree."""
    return MeshDistance(vertices, faces).query(points)
