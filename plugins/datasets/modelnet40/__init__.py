"""ModelNet40 in its two usual forms: OFF meshes with derived occupancy samples (``modelnet40``) and
PointNet++'s resampled point clouds (``modelnet40_resampled``); see ``dataset.py``.

Kept free of heavy imports (no torch, trimesh, igl) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import LOADER_VERSION, MESH_PROFILES, ModelNet40Config, ModelNet40ResampledConfig

CITATION = "Wu et al., 3D ShapeNets: A Deep Representation for Volumetric Shapes, CVPR 2015"

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="modelnet40",
    factory="harness_plugins.datasets.modelnet40.dataset:build_meshes",
    config=ModelNet40Config,
    capabilities=DatasetCaps(modalities=("points",), targets=("occupancy", "label"),
                             reference_datasets=("ModelNet40",)),
    version=LOADER_VERSION,
    citation=CITATION,
    description="ModelNet40 OFF meshes (set dataset.root): ONet-normalised, surface points with normals and "
                "winding-number occupancy derived once and cached; validation carved from train.",
    profiles=MESH_PROFILES,
)

RESAMPLED_SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="modelnet40_resampled",
    factory="harness_plugins.datasets.modelnet40.dataset:build_resampled",
    config=ModelNet40ResampledConfig,
    capabilities=DatasetCaps(modalities=("points",), targets=("label",), reference_datasets=("ModelNet40",)),
    version=LOADER_VERSION,
    citation=CITATION,
    description="modelnet40_normal_resampled point clouds (set dataset.root): 1024 input points with normals "
                "and class labels, optional Gaussian jitter; validation carved from train.",
)

__all__ = ["RESAMPLED_SPEC", "SPEC", "ModelNet40Config", "ModelNet40ResampledConfig"]
