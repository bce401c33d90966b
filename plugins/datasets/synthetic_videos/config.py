"""Configuration of the synthetic videos dataset (no heavy imports: the registry reads it without torch).

Defaults are sized for R3D-18 as trained on Kinetics-400: clips of 16 frames of 112x112; 10 motion classes
with 450 training clips per class (400 + 50 held out for validation) and 100 test clips per class.
``PROFILES`` shrink them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from harness.datacache import check_fields

from ..arrays import check_classes

GENERATOR_VERSION = "1"  # bump whenever generated content changes: it is part of the cache fingerprint

# The classes: how the shape moves. Screen coordinates (y down): clockwise is clockwise as seen.
MOTIONS = ("left", "right", "up", "down", "rotate_cw", "rotate_ccw", "orbit_cw", "orbit_ccw", "pulse", "shake")

GENERATION_FIELDS = ("seed", "classes", "train_per_class", "val_per_class", "test_per_class", "clip_length",
                     "frame_size", "supersample", "difficulty", "clutter", "occlusion", "noise")

# Named settings of what a clip shows besides the moving shape: the defaults of the fields left unset (None).
# ``standard`` (the paper profile's) hides the shape among static distractors and pixel noise; ``easy`` (the quick
# profile's) draws none and little noise. On 2,000 ``standard`` training clips R3D-18 memorises the backgrounds
# (0.24 test top-1 after 600 steps) where on ``easy`` ones it learns the motions (0.82): measured for issue 10.
DIFFICULTIES: dict[str, dict[str, Any]] = {
    "standard": {"clutter": 4, "occlusion": 0.3, "noise": 0.06},
    "easy": {"clutter": 0, "occlusion": 0.0, "noise": 0.02},
}


@dataclass
class SyntheticVideosConfig:
    seed: int = 0
    classes: list[str] = field(default_factory=lambda: list(MOTIONS))  # motions, in label order
    train_per_class: int = 400
    val_per_class: int = 50
    test_per_class: int = 100
    clip_length: int = 16  # frames per clip (R3D-18's input)
    frame_size: int = 112  # frame height and width (R3D-18's input)
    supersample: int = 1  # samples per pixel and axis (anti-aliased edges)
    difficulty: str = "standard"  # one of DIFFICULTIES: the values of the three fields below left at None
    clutter: int | None = None  # at most this many static distractor strokes/blobs per clip
    occlusion: float | None = None  # probability that a distractor is drawn over the moving shape
    noise: float | None = None  # largest standard deviation of the Gaussian pixel noise (drawn per clip, fresh per frame)
    workers: int = 2  # generation processes, capped at the CPU count
    # hash every cached file when opening instead of only those whose size or mtime changed
    checksum_all: bool = False

    def generation_params(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in GENERATION_FIELDS}
        params["classes"] = list(params["classes"])
        return params

    def resolved(self) -> SyntheticVideosConfig:
        """A copy with the difficulty's values in the fields left at None (an unknown difficulty is named)."""
        if self.difficulty not in DIFFICULTIES:
            raise ValueError(f"synthetic_videos: difficulty must be one of {list(DIFFICULTIES)}, "
                             f"got {self.difficulty!r}")
        preset = DIFFICULTIES[self.difficulty]
        return dataclasses.replace(self, **{name: value for name, value in preset.items()
                                            if getattr(self, name) is None})

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field (of a :meth:`resolved` config)."""
        check_classes("synthetic_videos", self.classes, MOTIONS)
        check_fields("synthetic_videos", self, counts=("train_per_class", "val_per_class", "test_per_class",
                                                       "clip_length", "frame_size", "supersample", "workers"),
                     non_negative=("seed", "clutter", "occlusion", "noise"))
        if isinstance(self.clutter, bool) or not isinstance(self.clutter, int):
            raise ValueError(f"synthetic_videos: clutter must be an integer >= 0, got {self.clutter!r}")
        if self.occlusion > 1:
            raise ValueError(f"synthetic_videos: occlusion must be a probability in [0, 1], got {self.occlusion!r}")
        if self.clip_length < 4:
            raise ValueError(f"synthetic_videos: clip_length must be at least 4 (motion needs frames), "
                             f"got {self.clip_length}")
        if self.frame_size < 16:
            raise ValueError(f"synthetic_videos: frame_size must be at least 16, got {self.frame_size}")


# Field overrides per profile. smoke: 40 tiny clips for tests; quick: 2,300 "easy" clips of 8 frames of 32x32.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"train_per_class": 2, "val_per_class": 1, "test_per_class": 1, "clip_length": 8, "frame_size": 32,
              "supersample": 2},
    "quick": {"train_per_class": 200, "val_per_class": 10, "test_per_class": 20, "clip_length": 8, "frame_size": 32,
              "supersample": 2, "difficulty": "easy"},
}
