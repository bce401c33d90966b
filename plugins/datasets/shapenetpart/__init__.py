"""ShapeNetPart part segmentation (Yi et al. 2016, normal-augmented benchmark files); see ``dataset.py``.

Kept free of heavy imports (no torch) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import LOADER_VERSION, PROFILES, ShapeNetPartConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="shapenetpart",
    factory="harness_plugins.datasets.shapenetpart.dataset:build",
    config=ShapeNetPartConfig,
    capabilities=DatasetCaps(modalities=("points",), targets=("part", "label"), reference_datasets=("ShapeNetPart",)),
    version=LOADER_VERSION,
    citation="Yi et al., A Scalable Active Framework for Region Annotation in 3D Shape Collections, SIGGRAPH Asia 2016",
    description="ShapeNetPart point clouds (set dataset.root): 2048 points per shape with normals, 50 global part "
                "labels across 16 categories, official split lists or a seeded fallback split.",
    profiles=PROFILES,
)

__all__ = ["SPEC", "ShapeNetPartConfig"]
