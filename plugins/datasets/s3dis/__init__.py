"""S3DIS (Stanford Large-Scale 3D Indoor Spaces, the point clouds of 2D-3D-S) rooms with their 13 classes; see
``dataset.py``.

Kept free of heavy imports (no torch) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import CLASSES, LOADER_VERSION, PROFILES, S3DISConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="s3dis",
    factory="harness_plugins.datasets.s3dis.dataset:build",
    config=S3DISConfig,
    # the published rows name it 2D-3D-S (the contextualising paper's tables)
    capabilities=DatasetCaps(modalities=("points",), targets=("udf", "semantic"), reference_datasets=("2D-3D-S",)),
    version=LOADER_VERSION,
    citation="Armeni et al., 3D Semantic Parsing of Large-Scale Indoor Spaces, CVPR 2016",
    description="S3DIS rooms (set dataset.root): annotated object point files -> 13 classes; areas 1-4 train, 6 "
                "test; points only, so distances are to the dense point sample; normalised to the unit cube, "
                "NDF-style queries with unsigned distances and labels; cached.",
    profiles=PROFILES,
)

__all__ = ["CLASSES", "SPEC", "S3DISConfig"]
