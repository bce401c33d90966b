"""One synthetic room, from its seed to the arrays the cache stores (a pure function of the generation fields).

The room (:mod:`.room`) and its scan (:mod:`.scan`) are made in metres; then the mesh, the scan and the cameras
are normalised together to the unit cube, and :func:`~harness_plugins.datasets.scenes.mesh_scene` draws the
queries and the ground-truth surface from the full mesh, with the scan (subsampled to ``n_input`` points,
with replacement only if it has fewer hits) as the encoder input.
"""
from __future__ import annotations

import numpy as np

from ..scenes import mesh_scene, normalise, pick
from .config import ROOM_TYPES, SyntheticRoomsConfig
from .room import generate_room
from .scan import scan_room

SPLIT_IDS = {"train": 0, "val": 1, "test": 2}


def room_type(config: SyntheticRoomsConfig, index: int) -> str:
    """Types interleave (room i has type i mod T), so any prefix of a split mixes them."""
    return config.room_types[index % len(config.room_types)]


def generate_scene(config: SyntheticRoomsConfig, split: str, index: int
                   ) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The stored arrays of room ``index`` of ``split`` and its normalised mesh (float32 vertices, faces)."""
    kind = room_type(config, index)
    seed = np.random.SeedSequence(config.seed, spawn_key=(SPLIT_IDS[split], index))
    layout_rng, scan_rng, sample_rng = (np.random.default_rng(s) for s in seed.spawn(3))
    room = generate_room(kind, layout_rng, config.ceiling_probability)
    vertices, faces, labels = room.mesh()
    scan = scan_room(room, vertices, faces, config.scan_views, config.scan_width, config.scan_height,
                     config.scan_fov, config.scan_max_range, config.scan_noise, scan_rng)
    if not len(scan.points):
        raise RuntimeError(f"synthetic_rooms {split} {index}: the scan hit nothing")
    normalised, loc, scale = normalise(vertices, f"synthetic_rooms {split} {index}")
    vertices32 = normalised.astype(np.float32)
    chosen = pick(len(scan.points), config.n_input, scan_rng)
    scan_points = ((scan.points[chosen] - loc) / scale).astype(np.float32)
    arrays = mesh_scene(vertices32, faces, labels, config, sample_rng, scan=(scan_points, labels[scan.faces[chosen]]))
    arrays.update({
        "room_type": np.int64(ROOM_TYPES.index(kind)),
        "room_size": np.array([room.width, room.depth, room.height]),  # metres
        "loc": loc,  # metres = normalised * scale + loc
        "scale": np.float64(scale),
        "camera_origins": ((scan.origins - loc) / scale).astype(np.float32),
        "camera_forwards": scan.forwards.astype(np.float32),
        "scan_hits": np.int64(len(scan.points)),
    })
    return arrays, (vertices32, faces)
