"""CIFAR-10 from its binary version (``cifar-10-batches-bin``; see ``dataset.py``).

Kept free of heavy imports (no torch) so that listing components stays fast.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DatasetCaps, Kind

from .config import LOADER_VERSION, PROFILES, Cifar10Config

SPEC = ComponentSpec(
    kind=Kind.DATASET,
    name="cifar10",
    factory="harness_plugins.datasets.cifar10.dataset:build",
    config=Cifar10Config,
    capabilities=DatasetCaps(modalities=("image",), targets=("label",), reference_datasets=("CIFAR10",)),
    version=LOADER_VERSION,
    citation="Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009",
    description="CIFAR-10 binary batches (set dataset.root): records of 1 label byte + 3072 pixel bytes checked; "
                "images [3,32,32]; validation carved from train per class; crop+flip augmentation in training.",
    profiles=PROFILES,
)

__all__ = ["PROFILES", "SPEC", "Cifar10Config"]
