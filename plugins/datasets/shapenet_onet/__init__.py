"""ShapeNet in the Occupancy Networks layout (Choy et al.'s 13-class subset); see ``dataset.py``.

Kept free of heavy imports (no torch, trimesh, igl) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import LOADER_VERSION, PROFILES, ShapeNetONetConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="shapenet_onet",
    factory="harness_plugins.datasets.shapenet_onet.dataset:build",
    config=ShapeNetONetConfig,
    capabilities=DatasetCaps(modalities=("points", "image"), targets=("occupancy", "label"),
                             reference_datasets=("Choy/ShapeNet",)),
    version=LOADER_VERSION,
    citation="Mescheder et al., Occupancy Networks: Learning 3D Reconstruction in Function Space, CVPR 2019",
    description="ShapeNet as ONet preprocessed it (set dataset.root): noisy point clouds, Choy views, occupancy "
                "from points.npz or derived from ShapeNetCore.v2 voxels/meshes (dataset.mesh_root), cached.",
    profiles=PROFILES,
)

__all__ = ["SPEC", "ShapeNetONetConfig"]
