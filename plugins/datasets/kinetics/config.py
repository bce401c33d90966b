"""Configuration of the Kinetics loader (no heavy imports: the registry reads it without torch)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.datacache import check_fields

LOADER_VERSION = "1"  # bump whenever loaded content changes: it is part of the fingerprint

LAYOUT = ("<root>/*.csv (or <root>/annotations/*.csv) with columns label,youtube_id,time_start,time_end,split, and "
          "<root>/<frames_dir>/<split>/[<label>/]<youtube_id>_<time_start:06d>_<time_end:06d>/ holding the clip's "
          "frames (img_00001.jpg, ... or any *.jpg/*.png, in name order)")

SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validate": "val",
               "validation": "val", "test": "test", "testing": "test"}  # CSV split value -> split


@dataclass
class KineticsConfig:
    root: str = ""  # the dataset folder (required)
    # annotation CSVs relative to root; empty: every *.csv in root and in root/annotations
    annotations: list[str] = field(default_factory=list)
    frames_dir: str = "frames"  # the folder of per-clip frame folders, relative to root
    clip_length: int = 16  # frames sampled per clip, evenly over the clip (R3D-18's input)
    frame_size: int = 112  # frames are resized to frame_size x frame_size (R3D-18's input)
    # the CSV split that serves as the test split: Kinetics-400's test labels were not public at first, so
    # papers report on its validation set; the harness's own val split is carved from the CSV's train rows
    test_split: str = "val"
    val_fraction: float = 0.1  # of each class's training clips, chosen by a seeded hash of the clip id
    seed: int = 0
    max_per_class: int = 0  # at most this many clips per class in each split (0: all)

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        check_fields("kinetics", self, counts=("clip_length", "frame_size"), fractions=("val_fraction",),
                     non_negative=("seed", "max_per_class"))
        if SPLIT_NAMES.get(self.test_split) not in ("val", "test"):
            raise ValueError(f"kinetics: test_split must name the CSV's val or test split, got {self.test_split!r}")

    def params(self) -> dict[str, Any]:
        """The fields that change which clips each split holds and how they are sampled (fingerprint)."""
        return {"annotations": list(self.annotations), "frames_dir": self.frames_dir,
                "clip_length": self.clip_length, "frame_size": self.frame_size,
                "test_split": SPLIT_NAMES[self.test_split], "val_fraction": self.val_fraction, "seed": self.seed,
                "max_per_class": self.max_per_class}


# Real data: smoke and quick runs shrink the clips (and smoke keeps 2 clips per class and split).
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"clip_length": 4, "frame_size": 32, "max_per_class": 2},
    "quick": {"clip_length": 8, "frame_size": 64},
}
