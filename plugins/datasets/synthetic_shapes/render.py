"""Shaded views of a normalised mesh by ray casting, in the manner of the Choy et al. renders ONet trains on.

The camera is a pinhole at ``radius`` from the origin, at ``elevation`` degrees above the horizontal
(x-z) plane and ``azimuth`` degrees around the vertical y axis (0 = on the +z axis, increasing towards
+x), looking at the origin with y up. Its focal length is in pixels; pixel (row, column) has its centre
ray through ``((column + 0.5 - W/2) / focal, -(row + 0.5 - H/2) / focal, 1)`` in the camera frame
(x right, y up, z forward).

Shading is Lambertian on face normals: a grey material lit by ambient light plus one directional light
fixed to the camera (above, left and behind it), so every view is lit alike. Object pixels stay below
``OBJECT_MAX`` and the background is pure white, so a view's silhouette is exactly its non-white pixels.
The material is grey, so one channel is stored (``uint8 [V, H, W]``); items repeat it to RGB.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np
import trimesh
from trimesh import ray

ALBEDO = 0.8
AMBIENT = 0.3  # share of the light that is ambient; the rest comes from the directional light
LIGHT = np.array([-0.4, 0.6, -0.7]) / np.linalg.norm([-0.4, 0.6, -0.7])  # camera frame, towards the light
BACKGROUND = 255
OBJECT_MAX = round(255 * ALBEDO)  # the brightest object pixel: fully lit


class RayCaster(Protocol):
    """What trimesh's intersectors (embree's and its own) share: the first face each ray hits, -1 if none."""

    def intersects_first(self, ray_origins: np.ndarray, ray_directions: np.ndarray) -> np.ndarray: ...


def intersector(mesh: trimesh.Trimesh) -> RayCaster:
    """Embree's intersector when embreex is installed (tens of times faster), trimesh's own otherwise."""
    if ray.has_embree:
        return ray.ray_pyembree.RayMeshIntersector(mesh)
    return ray.ray_triangle.RayMeshIntersector(mesh)


def camera_frame(azimuth: float, elevation: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera centre [3] and rotation [3, 3] whose rows are the camera's right, up and forward axes in world
    coordinates (so ``rotation @ (p - centre)`` is ``p`` in the camera frame)."""
    az, el = np.radians(azimuth), np.radians(elevation)
    centre = radius * np.array([np.cos(el) * np.sin(az), np.sin(el), np.cos(el) * np.cos(az)])
    forward = -centre / radius
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    return centre, np.stack([right, np.cross(right, forward), forward])


def pixel_rays(size: int, focal: float) -> np.ndarray:
    """Unit ray directions [size * size, 3] in the camera frame, row-major from the top-left pixel."""
    coords = (np.arange(size) + 0.5 - size / 2) / focal
    y, x = np.meshgrid(-coords, coords, indexing="ij")
    rays = np.stack([x, y, np.ones_like(x)], axis=-1).reshape(-1, 3)
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def render_views(vertices: np.ndarray, faces: np.ndarray, azimuths: np.ndarray, elevation: float, radius: float,
                 focal: float, size: int, caster: RayCaster | None = None) -> np.ndarray:
    """Grey views ``uint8 [len(azimuths), size, size]`` of the mesh, one per azimuth, cast in one batch of rays.

    ``caster`` defaults to :func:`intersector` of the mesh (tests pass trimesh's own to compare).
    """
    mesh = trimesh.Trimesh(np.asarray(vertices, dtype=np.float64), np.asarray(faces, dtype=np.int64), process=False)
    caster = intersector(mesh) if caster is None else caster
    local = pixel_rays(size, focal)
    frames = [camera_frame(az, elevation, radius) for az in azimuths]
    origins = np.repeat(np.stack([centre for centre, _ in frames]), len(local), axis=0)
    directions = np.concatenate([local @ rotation for _, rotation in frames])
    lights = np.repeat(np.stack([LIGHT @ rotation for _, rotation in frames]), len(local), axis=0)

    hit_face = np.asarray(caster.intersects_first(origins, directions))
    hit = hit_face >= 0
    normals = mesh.face_normals[hit_face[hit]]
    lambert = np.clip(np.einsum("ij,ij->i", normals, lights[hit]), 0.0, None)
    shade = ALBEDO * (AMBIENT + (1.0 - AMBIENT) * lambert)
    pixels = np.full(len(directions), BACKGROUND, dtype=np.uint8)
    pixels[hit] = np.round(255 * shade).astype(np.uint8)
    return pixels.reshape(len(azimuths), size, size)
