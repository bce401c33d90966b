"""Configuration of the SceneNN loader (no heavy imports: the registry reads it)."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.datacache import check_fields, check_split_fractions

from ..scenes import NYU40_TO_SCANNET20, SCANNET20, SCENE_SAMPLING_PROFILES, SceneSampling, check_fraction

LOADER_VERSION = "1"  # bump whenever loaded content changes: it is part of the fingerprint
LAYOUT = ("<root>/<scene>.ply or <root>/<scene>/<scene>.ply: a triangle mesh whose vertices carry a class id in "
          "the 'label' property (label_property; NYU40 ids by default, as the contextualising paper uses them); "
          "optional split lists <root>/train.txt and <root>/test.txt (one scene id per line)")


@dataclass
class SceneNNConfig(SceneSampling):
    root: str = ""  # required
    seed: int = 0
    label_property: str = "label"  # the per-vertex property holding the class id
    # the semantic vocabulary (index = label) and raw id -> class name; both empty: NYU40 ids -> ScanNet's 20
    # benchmark classes (the paper's "same 40 classes as ScanNet ... the 20 class subset"). Unmapped ids: -1
    classes: list[str] = field(default_factory=list)
    label_map: dict[str, str] = field(default_factory=dict)
    # without split lists: the scenes found, split by a seeded hash of their ids (the paper's 56 train / 20 test
    # of 76 scans, with 6 of the 56 as val); with them, val_fraction of train.txt is carved out as val
    split_fractions: dict[str, float] = field(default_factory=lambda: {"train": 50, "val": 6, "test": 20})
    val_fraction: float = 0.1
    strict_splits: bool = False  # a scene in both train.txt and test.txt: refuse the lists (default: warn)

    def vocabulary(self) -> tuple[tuple[str, ...], dict[int, int]]:
        """The class names and raw id -> label mapping in use."""
        if not self.classes and not self.label_map:
            return SCANNET20, dict(NYU40_TO_SCANNET20)
        classes = tuple(self.classes)
        return classes, {int(raw): classes.index(name) for raw, name in self.label_map.items()}

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        check_fields("scenenn", self, non_negative=("seed",))
        if not isinstance(self.label_property, str) or not self.label_property:
            raise ValueError(f"scenenn: label_property must be a property name, got {self.label_property!r}")
        if bool(self.classes) != bool(self.label_map):
            raise ValueError("scenenn: set both classes and label_map (raw id -> class name), or neither for NYU40 "
                             "ids -> the ScanNet20 classes")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"scenenn: classes must be unique, got {list(self.classes)}")
        for raw, name in self.label_map.items():
            if not str(raw).lstrip("-").isdigit():
                raise ValueError(f"scenenn: label_map keys must be integer ids, got {raw!r}")
            if name not in self.classes:
                raise ValueError(f"scenenn: label_map maps {raw} to {name!r}, which is not one of classes "
                                 f"{list(self.classes)}")
        check_split_fractions("scenenn", self.split_fractions)
        check_fraction("scenenn", "val_fraction", self.val_fraction)
        self.check_sampling("scenenn")


PROFILES = SCENE_SAMPLING_PROFILES
