"""Kinetics-400 (or any Kinetics-style set) as folders of decoded frames plus the annotation CSVs (see
``dataset.py``).

Kept free of heavy imports (no torch, Pillow) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import LOADER_VERSION, PROFILES, KineticsConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="kinetics",
    factory="harness_plugins.datasets.kinetics.dataset:build",
    config=KineticsConfig,
    capabilities=DatasetCaps(modalities=("video",), targets=("label",), reference_datasets=("Kinetics-400",)),
    version=LOADER_VERSION,
    citation="Kay et al., The Kinetics Human Action Video Dataset, arXiv:1705.06950, 2017",
    description="Kinetics annotation CSVs (label,youtube_id,time_start,time_end,split) + a folder of decoded "
                "frames per clip (set dataset.root); T frames sampled uniformly and resized, clips [3,T,H,W]; "
                "validation carved from train, test from the CSV's val split by default.",
    profiles=PROFILES,
)

__all__ = ["PROFILES", "SPEC", "KineticsConfig"]
