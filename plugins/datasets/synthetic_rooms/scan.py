"""A virtual RGB-D scan of a room: depth images ray-cast (embree through trimesh) from poses inside it.

Each pose stands in free floor space (outside every object's footprint) at eye height, the poses spread over
the room, and looks at a point of the far walls or the floor, so a scan covers what a person sweeping a sensor
through the room would capture: most surfaces, some from several sides, others (under and behind furniture,
the far side of a door leaf, corners no pose faced) not at all. A
pixel's ray hits the first face within ``max_range`` (rays through a door or window leave the room unseen);
its depth along the optical axis gets Gaussian noise of the Kinect's axial model (Nguyen et al., "Modeling
Kinect Sensor Noise for Improved 3D Reconstruction and Tracking", 3DIMPVT 2012),
sigma(z) = 0.0012 + 0.0019 (z - 0.4)^2 metres, times ``noise``. The points keep the label of the face hit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh

from .room import Room

UP = np.array([0.0, 0.0, 1.0])


def depth_sigma(depth: np.ndarray, noise: float) -> np.ndarray:
    """Axial noise sigma (metres) of a depth (metres)."""
    return noise * (0.0012 + 0.0019 * (depth - 0.4) ** 2)


@dataclass
class Scan:
    points: np.ndarray  # [P,3] float64, room frame
    faces: np.ndarray  # [P] int64, the face each point's ray hit
    origins: np.ndarray  # [views,3] camera centres
    forwards: np.ndarray  # [views,3] optical axes


def intersector(mesh: trimesh.Trimesh):
    """Embree's intersector when embreex is installed (tens of times faster), trimesh's own otherwise."""
    if trimesh.ray.has_embree:
        return trimesh.ray.ray_pyembree.RayMeshIntersector(mesh)
    return trimesh.ray.ray_triangle.RayMeshIntersector(mesh)


def camera_poses(room: Room, views: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``views`` camera centres in free floor space at eye height, spread over the room (each the farthest of a
    few free candidates from the poses before it), and unit optical axes towards a point on the far walls or
    floor (at least 1.5 m away), as a person sweeping a sensor around the room would."""
    origins: list[np.ndarray] = []
    forwards = []
    for _ in range(views):
        candidates = []
        for _ in range(200):
            candidate = np.array([rng.uniform(0.4, room.width - 0.4), rng.uniform(0.4, room.depth - 0.4)])
            if not any(r[0] - 0.15 < candidate[0] < r[2] + 0.15 and r[1] - 0.15 < candidate[1] < r[3] + 0.15
                       for r in room.footprints):
                candidates.append(candidate)
                if len(candidates) == 4:
                    break
        if not candidates:
            candidates = [np.array([room.width / 2, room.depth / 2])]
        spread = [min((np.linalg.norm(c - o[:2]) for o in origins), default=0.0) for c in candidates]
        position = candidates[int(np.argmax(spread))]
        origin = np.array([*position, min(rng.uniform(1.2, 1.7), room.height - 0.2)])
        for _ in range(50):  # a point of the walls (anywhere up to the ceiling) or of the floor, 1.5 m away or more
            if rng.random() < 0.5:
                t = rng.uniform(0.0, 1.0)
                corner = [(t * room.width, 0.0), (room.width, t * room.depth), (t * room.width, room.depth),
                          (0.0, t * room.depth)][int(rng.integers(4))]
                target = np.array([*corner, rng.uniform(0.0, room.height)])
            else:
                target = np.array([rng.uniform(0, room.width), rng.uniform(0, room.depth), 0.0])
            if np.linalg.norm(target[:2] - position) > 1.5:
                break
        forward = (target - origin) / np.linalg.norm(target - origin)
        origins.append(origin)
        forwards.append(forward)
    return np.array(origins), np.array(forwards)


def pixel_directions(forward: np.ndarray, width: int, height: int, fov: float) -> np.ndarray:
    """Unit ray directions [height*width, 3] of a level pinhole camera (no roll) looking along ``forward``."""
    right = np.cross(forward, UP)
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    half_w = math.tan(math.radians(fov) / 2)
    half_h = half_w * height / width
    u = ((np.arange(width) + 0.5) / width * 2 - 1) * half_w
    v = ((np.arange(height) + 0.5) / height * 2 - 1) * half_h
    uu, vv = np.meshgrid(u, v)
    rays = forward + uu.reshape(-1, 1) * right - vv.reshape(-1, 1) * up
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def scan_room(room: Room, vertices: np.ndarray, faces: np.ndarray, views: int, width: int, height: int, fov: float,
              max_range: float, noise: float, rng: np.random.Generator) -> Scan:
    """Every noisy depth point of ``views`` depth images of the room mesh."""
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    caster = intersector(mesh)
    origins, forwards = camera_poses(room, views, rng)
    all_origins = np.repeat(origins, width * height, axis=0)
    directions = np.concatenate([pixel_directions(f, width, height, fov) for f in forwards])
    axes = np.repeat(forwards, width * height, axis=0)
    locations, ray, face = caster.intersects_location(all_origins, directions, multiple_hits=False)
    ray = np.asarray(ray, dtype=np.int64)
    order = np.argsort(ray, kind="stable")  # a fixed order, whatever order the caster returns hits in
    locations, ray, face = np.asarray(locations, np.float64)[order], ray[order], np.asarray(face, np.int64)[order]
    distance = np.einsum("ij,ij->i", locations - all_origins[ray], directions[ray])
    depth = distance * np.einsum("ij,ij->i", directions[ray], axes[ray])
    keep = (depth > 0.05) & (depth <= max_range)
    ray, face, distance, depth = ray[keep], face[keep], distance[keep], depth[keep]
    noisy = distance + rng.normal(0.0, 1.0, len(depth)) * depth_sigma(depth, noise) * distance / depth
    points = all_origins[ray] + directions[ray] * noisy[:, None]
    return Scan(points, face, origins, forwards)
