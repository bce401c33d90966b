"""Configuration of the ScanNet loader (no heavy imports: the registry reads it)."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.datacache import check_fields, check_split_fractions

from ..scenes import SCENE_SAMPLING_PROFILES, SceneSampling, check_fraction

LOADER_VERSION = "1"  # bump whenever loaded content changes: it is part of the fingerprint
LAYOUTS = ("auto", "raw", "arrays")
LAYOUT = ("raw: <root>/scans/<scene>/<scene>_vh_clean_2.ply with <scene>_vh_clean_2.labels.ply (NYU40 ids in the "
          "'label' vertex property); or arrays (mmdetection3d's converter): <root>/<scene>_vert_all.npy [N,6] "
          "x y z r g b with <root>/<scene>_sem_label_all.npy (NYU40 ids), also one folder down; optional split "
          "lists <root>/scannetv2_train.txt and <root>/scannetv2_val.txt")


@dataclass
class ScanNetConfig(SceneSampling):
    root: str = ""  # required
    layout: str = "auto"  # raw | arrays | auto (raw where <root>/scans exists, else arrays)
    seed: int = 0
    # with the official lists: scannetv2_val.txt is the test split (the paper tests on ScanNet's validation set,
    # following RangeUDF) and val_fraction of scannetv2_train.txt is carved out as val
    val_fraction: float = 0.1
    # without them: the scenes found, split by a seeded hash of their ids
    split_fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "val": 0.1, "test": 0.2})
    strict_splits: bool = False  # a scene in both official lists: refuse them (default: warn)

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        if self.layout not in LAYOUTS:
            raise ValueError(f"scannet: layout must be one of {list(LAYOUTS)}, got {self.layout!r}")
        check_fields("scannet", self, non_negative=("seed",))
        check_fraction("scannet", "val_fraction", self.val_fraction)
        check_split_fractions("scannet", self.split_fractions)
        self.check_sampling("scannet")


PROFILES = SCENE_SAMPLING_PROFILES
