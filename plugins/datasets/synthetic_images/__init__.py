"""Procedural 32x32 colour images of textured shapes in 10 classes, the embedded stand-in for CIFAR-10 (see
``dataset.py``).

Kept free of heavy imports (no torch) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import GENERATOR_VERSION, PROFILES, SyntheticImagesConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="synthetic_images",
    factory="harness_plugins.datasets.synthetic_images.dataset:build",
    config=SyntheticImagesConfig,
    capabilities=DatasetCaps(modalities=("image",), targets=("label",), synthetic=True,
                             reference_datasets=("CIFAR10",)),
    version=GENERATOR_VERSION,
    description="10 classes of textured shapes (circle, square, triangle, star, cross, ring, ellipse, diamond, "
                "crescent, arrow) with random pose, colours and fill over gradient/noise backgrounds with "
                "distractor strokes and blobs, some occluding; 32x32 RGB, CIFAR-10 sizes; crop+flip "
                "augmentation in training.",
    profiles=PROFILES,
)

__all__ = ["PROFILES", "SPEC", "SyntheticImagesConfig"]
