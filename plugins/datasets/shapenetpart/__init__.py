"""ShapeNetPart part segmentation (Yi et al. 2016, normal-augmented benchmark files), per point or as implicit
occupancy and parts with ShapeNetCore.v2 meshes; see ``dataset.py``.

Kept free of heavy imports (no torch) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import IMPLICIT_PROFILES, LOADER_VERSION, PROFILES, ShapeNetPartConfig, ShapeNetPartImplicitConfig

CITATION = "Yi et al., A Scalable Active Framework for Region Annotation in 3D Shape Collections, SIGGRAPH Asia 2016"

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="shapenetpart",
    factory="harness_plugins.datasets.shapenetpart.dataset:build",
    config=ShapeNetPartConfig,
    capabilities=DatasetCaps(modalities=("points",), targets=("part", "label"), reference_datasets=("ShapeNetPart",)),
    version=LOADER_VERSION,
    citation=CITATION,
    description="ShapeNetPart point clouds (set dataset.root): 2048 points per shape with normals, 50 global part "
                "labels across 16 categories, official split lists or a seeded fallback split; with "
                "dataset.mesh_root, the implicit task of shapenetpart_implicit.",
    profiles=PROFILES,
)

IMPLICIT_SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="shapenetpart_implicit",
    factory="harness_plugins.datasets.shapenetpart.dataset:build_implicit",
    config=ShapeNetPartImplicitConfig,
    capabilities=DatasetCaps(modalities=("points",), targets=("occupancy", "part", "label"),
                             reference_datasets=("ShapeNetPart",)),
    version=LOADER_VERSION,
    citation=CITATION,
    description="ShapeNetPart as implicit part segmentation (Costain & Prisacariu, Towards Generalising Neural "
                "Implicit Representations): ShapeNetCore.v2 meshes (dataset.mesh_root) fitted to the clouds give "
                "ONet occupancy; inside queries take the nearest cloud point's part; cached.",
    profiles=IMPLICIT_PROFILES,
)

__all__ = ["IMPLICIT_SPEC", "SPEC", "ShapeNetPartConfig", "ShapeNetPartImplicitConfig"]
