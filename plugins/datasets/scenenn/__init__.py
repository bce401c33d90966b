"""SceneNN scene meshes with per-vertex class ids (NYU40 -> ScanNet20 by default); see ``dataset.py``.

Kept free of heavy imports (no torch) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import LOADER_VERSION, PROFILES, SceneNNConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="scenenn",
    factory="harness_plugins.datasets.scenenn.dataset:build",
    config=SceneNNConfig,
    capabilities=DatasetCaps(modalities=("points",), targets=("udf", "semantic"), reference_datasets=("SceneNN",)),
    version=LOADER_VERSION,
    citation="Hua et al., SceneNN: A Scene Meshes Dataset with aNNotations, 3DV 2016",
    description="SceneNN meshes (set dataset.root) with per-vertex class ids (NYU40 -> 20 ScanNet classes by "
                "default, or a configured mapping); 56/20 train/test; normalised to the unit cube, NDF-style "
                "queries with exact unsigned distances and nearest-face labels; cached.",
    profiles=PROFILES,
)

__all__ = ["SPEC", "SceneNNConfig"]
