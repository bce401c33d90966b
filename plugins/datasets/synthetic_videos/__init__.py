"""Clips of moving textured shapes whose class is the motion, the embedded stand-in for Kinetics-400 (see
``dataset.py``).

Kept free of heavy imports (no torch) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import GENERATOR_VERSION, MOTIONS, PROFILES, SyntheticVideosConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="synthetic_videos",
    factory="harness_plugins.datasets.synthetic_videos.dataset:build",
    config=SyntheticVideosConfig,
    capabilities=DatasetCaps(modalities=("video",), targets=("label",), synthetic=True,
                             reference_datasets=("Kinetics-400",)),
    version=GENERATOR_VERSION,
    description="10 motion classes (left, right, up, down, rotate cw/ccw, orbit cw/ccw, pulse, shake) of a "
                "randomly shaped, coloured and textured shape over static clutter on a wrap-around frame: no "
                "single frame tells the class. Clips [3,16,112,112] (R3D input).",
    profiles=PROFILES,
)

__all__ = ["MOTIONS", "PROFILES", "SPEC", "SyntheticVideosConfig"]
