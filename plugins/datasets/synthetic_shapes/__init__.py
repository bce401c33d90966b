"""Procedural part-labelled shapes, the harness's embedded default dataset (see ``dataset.py``).

Kept free of heavy imports (no torch, trimesh, manifold3d) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import GENERATOR_VERSION, PROFILES, SyntheticShapesConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="synthetic_shapes",
    factory="harness_plugins.datasets.synthetic_shapes.dataset:build",
    config=SyntheticShapesConfig,
    capabilities=DatasetCaps(modalities=("points", "image"), targets=("occupancy", "part", "label"),
                             synthetic=True, reference_datasets=("Choy/ShapeNet", "ShapeNetPart")),
    version=GENERATOR_VERSION,
    description="8 categories of primitive compositions with random proportions and optional parts: watertight "
                "normalised meshes, occupancy samples, surface points with normals, global part labels, "
                "24 shaded views per shape.",
    profiles=PROFILES,
)

__all__ = ["SPEC", "SyntheticShapesConfig", "PROFILES"]
