"""Configuration and vocabulary of the S3DIS loader (no heavy imports: the registry reads it)."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.datacache import check_fields

from ..scenes import SCENE_SAMPLING_PROFILES, SceneSampling, check_fraction

LOADER_VERSION = "1"  # bump whenever loaded content changes: it is part of the fingerprint
LAYOUT = ("<root>/Area_<k>/<room>/<room>.txt (x y z r g b per line) and <root>/Area_<k>/<room>/Annotations/"
          "<class>_<i>.txt (the same format, one file per object); e.g. Stanford3dDataset_v1.2_Aligned_Version")
# the 13 classes of S3DIS (index = semantic label), as the benchmark orders them
CLASSES: tuple[str, ...] = ("ceiling", "floor", "wall", "beam", "column", "window", "door", "table", "chair", "sofa",
                            "bookcase", "board", "clutter")
UNKNOWN = ("clutter", "ignore")


@dataclass
class S3DISConfig(SceneSampling):
    root: str = ""  # required
    seed: int = 0
    # the paper's split (following RangeUDF): areas 1-4 train, area 6 test (area 5 is unused: it comes in two
    # unregistered scans); val: these areas, or, if none, val_fraction of the training rooms
    train_areas: list[int] = field(default_factory=lambda: [1, 2, 3, 4])
    val_areas: list[int] = field(default_factory=list)
    test_areas: list[int] = field(default_factory=lambda: [6])
    val_fraction: float = 0.1
    # an annotation whose name is not one of the 13 classes (e.g. Area_5's "stairs"): "clutter", as PointNet's
    # indoor3d_util does, or "ignore" (-1)
    unknown_class: str = "clutter"

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        check_fields("s3dis", self, non_negative=("seed",))
        areas = {"train_areas": self.train_areas, "val_areas": self.val_areas, "test_areas": self.test_areas}
        for name, values in areas.items():
            if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 1 for a in values):
                raise ValueError(f"s3dis: {name} must be a list of area numbers >= 1, got {list(values)}")
        for name in ("train_areas", "test_areas"):
            if not areas[name]:
                raise ValueError(f"s3dis: {name} must name at least one area")
        every = [a for values in areas.values() for a in values]
        if len(set(every)) != len(every):
            raise ValueError(f"s3dis: an area is in two splits: {areas}")
        check_fraction("s3dis", "val_fraction", self.val_fraction)
        if self.unknown_class not in UNKNOWN:
            raise ValueError(f"s3dis: unknown_class must be one of {list(UNKNOWN)}, got {self.unknown_class!r}")
        self.check_sampling("s3dis")


PROFILES = SCENE_SAMPLING_PROFILES
