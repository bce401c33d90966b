"""MNIST from its original idx files, gzip-compressed or not (see ``dataset.py``).

Kept free of heavy imports (no torch) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import LOADER_VERSION, PROFILES, MnistConfig

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="mnist",
    factory="harness_plugins.datasets.mnist.dataset:build",
    config=MnistConfig,
    capabilities=DatasetCaps(modalities=("image",), targets=("label",), reference_datasets=()),
    version=LOADER_VERSION,
    citation="LeCun et al., Gradient-Based Learning Applied to Document Recognition, Proc. IEEE 1998",
    description="MNIST idx files (set dataset.root; .gz or not), magic numbers, sizes and labels checked; "
                "images [1,28,28]; validation carved from train per class; carve_from_test for a copy with "
                "only the t10k files.",
    profiles=PROFILES,
)

__all__ = ["PROFILES", "SPEC", "MnistConfig"]
