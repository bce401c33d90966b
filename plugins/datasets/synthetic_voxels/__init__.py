"""The synthetic shapes voxelised at 32^3, the embedded stand-in for voxelised ModelNet40 (see ``dataset.py``).

Kept free of heavy imports (no torch, igl) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import GENERATOR_VERSION, PROFILES, SyntheticVoxelsConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="synthetic_voxels",
    factory="harness_plugins.datasets.synthetic_voxels.dataset:build",
    config=SyntheticVoxelsConfig,
    capabilities=DatasetCaps(modalities=("voxels",), targets=("label",), synthetic=True,
                             reference_datasets=("ModelNet40",)),
    version=GENERATOR_VERSION,
    description="synthetic_shapes' watertight meshes (8 categories) as 32^3 occupancy grids (voxel-centre "
                "winding-number test, padding 0.1), labelled by category; optional random rotation about "
                "the up axis in training.",
    profiles=PROFILES,
)

__all__ = ["PROFILES", "SPEC", "SyntheticVoxelsConfig"]
