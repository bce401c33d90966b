"""Configuration of the synthetic images dataset (no heavy imports: the registry reads it without torch).

Defaults are CIFAR-10-sized: 10 classes of 32x32 colour images, 5000 training images per class of which 500
are held out for validation (``val_per_class``), and 1000 test images per class. ``PROFILES`` shrink them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.datacache import check_fields

from ..arrays import check_classes
from .render import SHAPES

GENERATOR_VERSION = "1"  # bump whenever generated content changes: it is part of the cache fingerprint

# Fields that change the generated images, hence the cache fingerprint; the rest only change how items are
# drawn from the cache (or how fast it is built).
GENERATION_FIELDS = ("seed", "classes", "train_per_class", "val_per_class", "test_per_class", "image_size",
                     "supersample", "clutter", "occlusion", "noise")


@dataclass
class SyntheticImagesConfig:
    seed: int = 0
    classes: list[str] = field(default_factory=lambda: list(SHAPES))  # shape kinds, in label order
    # images per class in each split (CIFAR-10: 5000 training images per class, here 4500 + 500 for validation)
    train_per_class: int = 4500
    val_per_class: int = 500
    test_per_class: int = 1000
    image_size: int = 32
    supersample: int = 2  # samples per pixel and axis (anti-aliased edges)
    clutter: int = 4  # at most this many distractor strokes/blobs per image
    occlusion: float = 0.3  # probability that a distractor is drawn over the shape rather than under it
    noise: float = 0.08  # largest standard deviation of the Gaussian pixel noise (drawn per image)
    # training augmentation of CIFAR ResNets: random crop of the image zero-padded by augment_padding pixels,
    # and a horizontal flip with probability 1/2 (training items only)
    augment: bool = True
    augment_padding: int = 4
    workers: int = 2  # generation processes, capped at the CPU count
    # hash every cached file when opening instead of only those whose size or mtime changed
    checksum_all: bool = False

    def generation_params(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in GENERATION_FIELDS}
        params["classes"] = list(params["classes"])
        return params

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        check_classes("synthetic_images", self.classes, SHAPES)
        check_fields("synthetic_images", self, counts=("train_per_class", "val_per_class", "test_per_class",
                                                       "image_size", "supersample", "workers"),
                     non_negative=("seed", "clutter", "occlusion", "noise", "augment_padding"))
        if isinstance(self.clutter, bool) or not isinstance(self.clutter, int):
            raise ValueError(f"synthetic_images: clutter must be an integer >= 0, got {self.clutter!r}")
        if self.occlusion > 1:
            raise ValueError(f"synthetic_images: occlusion must be a probability in [0, 1], got {self.occlusion!r}")
        if self.image_size < 8:
            raise ValueError(f"synthetic_images: image_size must be at least 8, got {self.image_size}")


# Field overrides per profile. smoke: 160 images for tests; quick: 4500 images that generate in seconds.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"train_per_class": 10, "val_per_class": 2, "test_per_class": 4},
    "quick": {"train_per_class": 300, "val_per_class": 50, "test_per_class": 100},
}
