"""ScanNet v2 scenes with the 20 benchmark classes, raw meshes or mmdetection3d's per-vertex arrays; see
``dataset.py``.

Kept free of heavy imports (no torch) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import LOADER_VERSION, PROFILES, ScanNetConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="scannet",
    factory="harness_plugins.datasets.scannet.dataset:build",
    config=ScanNetConfig,
    capabilities=DatasetCaps(modalities=("points",), targets=("udf", "semantic"), reference_datasets=("ScanNet",)),
    version=LOADER_VERSION,
    citation="Dai et al., ScanNet: Richly-annotated 3D Reconstructions of Indoor Scenes, CVPR 2017",
    description="ScanNet v2 (set dataset.root): _vh_clean_2 meshes with NYU40 labels -> 20 benchmark classes, or "
                "the per-vertex arrays of mmdetection3d's converter (distances to the points); normalised to the "
                "unit cube, NDF-style queries with unsigned distances and labels; cached.",
    profiles=PROFILES,
)

__all__ = ["SPEC", "ScanNetConfig"]
