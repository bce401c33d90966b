"""Procedural indoor rooms with ScanNet20 labels and virtual depth scans, the embedded default scene dataset
(see ``dataset.py``).

Kept free of heavy imports (no torch, trimesh, manifold3d) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import GENERATOR_VERSION, PROFILES, ROOM_TYPES, SyntheticRoomsConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="synthetic_rooms",
    factory="harness_plugins.datasets.synthetic_rooms.dataset:build",
    config=SyntheticRoomsConfig,
    capabilities=DatasetCaps(modalities=("points",), targets=("udf", "semantic"), synthetic=True,
                             reference_datasets=("ScanNet",)),
    version=GENERATOR_VERSION,
    description="Procedural rooms (bedroom, living room, office, kitchen, bathroom): open walls with door and "
                "window openings, furniture from the synthetic shapes and boxes, per-face ScanNet20 labels; "
                "encoder input from a virtual noisy depth scan; NDF-style queries with exact unsigned distances "
                "and nearest-face labels.",
    profiles=PROFILES,
)

__all__ = ["PROFILES", "ROOM_TYPES", "SPEC", "SyntheticRoomsConfig"]
