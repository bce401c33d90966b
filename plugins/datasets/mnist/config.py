"""Configuration of the MNIST loader (no heavy imports: the registry reads it without torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.datacache import check_fields, check_split_fractions

LOADER_VERSION = "1"  # bump whenever loaded content changes: it is part of the fingerprint

LAYOUT = ("<root>/{train,t10k}-{images-idx3,labels-idx1}-ubyte, each optionally gzip-compressed (.gz), as "
          "distributed by LeCun et al.")


@dataclass
class MnistConfig:
    root: str = ""  # the folder of the idx files (required)
    # of each class's training images, held out for validation (1/12: the usual 55,000 / 5,000 split), chosen
    # by a seeded hash of the image's position
    val_fraction: float = 1 / 12
    seed: int = 0
    # a copy with only the t10k (test) files is an error unless this is set: then train, val and test are all
    # carved from the t10k images, per class, by split_fractions (not comparable with published MNIST figures)
    carve_from_test: bool = False
    split_fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "val": 0.1, "test": 0.2})
    max_per_class: int = 0  # at most this many images per class in each split (0: all)

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        check_fields("mnist", self, fractions=("val_fraction",), non_negative=("seed", "max_per_class"))
        check_split_fractions("mnist", self.split_fractions)

    def params(self) -> dict[str, Any]:
        """The fields that change what is loaded (part of the fingerprint)."""
        return {"val_fraction": self.val_fraction, "seed": self.seed, "carve_from_test": self.carve_from_test,
                "split_fractions": dict(self.split_fractions), "max_per_class": self.max_per_class}


# Real data: the smoke profile keeps 20 images per class and split.
PROFILES: dict[str, dict[str, Any]] = {"smoke": {"max_per_class": 20}, "quick": {}}
