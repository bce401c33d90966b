"""Configuration of the CIFAR-10 loader (no heavy imports: the registry reads it without torch)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.datacache import check_fields

LOADER_VERSION = "1"  # bump whenever loaded content changes: it is part of the fingerprint

LAYOUT = ("<root>/data_batch_{1..5}.bin and <root>/test_batch.bin (optional batches.meta.txt), or the same inside "
          "<root>/cifar-10-batches-bin/: the binary version of CIFAR-10")


@dataclass
class Cifar10Config:
    root: str = ""  # the folder of the binary batches (required)
    # of each class's training images, held out for validation (0.1: the 45,000 / 5,000 split of the CIFAR
    # ResNets), chosen by a seeded hash of the image's position
    val_fraction: float = 0.1
    seed: int = 0
    # training augmentation of CIFAR ResNets: random crop of the image zero-padded by augment_padding pixels,
    # and a horizontal flip with probability 1/2 (training items only)
    augment: bool = True
    augment_padding: int = 4
    max_per_class: int = 0  # at most this many images per class in each split (0: all)

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        check_fields("cifar10", self, fractions=("val_fraction",),
                     non_negative=("seed", "augment_padding", "max_per_class"))

    def params(self) -> dict[str, Any]:
        """The fields that change which images each split holds (part of the fingerprint)."""
        return {"val_fraction": self.val_fraction, "seed": self.seed, "max_per_class": self.max_per_class}


# Real data: the smoke profile keeps 20 images per class and split.
PROFILES: dict[str, dict[str, Any]] = {"smoke": {"max_per_class": 20}, "quick": {}}
