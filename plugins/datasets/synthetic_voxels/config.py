"""Configuration of the synthetic voxels dataset (no heavy imports: the registry reads it without torch).

The shapes are synthetic_shapes' (same seed, categories and per-class counts give the same shapes); their
meshes are voxelised at ``resolution``^3 (32^3 as VoxNet and 3D ShapeNets). ``shapes_profile`` picks the
synthetic_shapes profile whose per-shape sample sizes the meshes are generated with: only the mesh is used
here, so the default is the light ``quick`` one, and a profile that matches the synthetic_shapes run of the
same session shares its cache (no mesh is generated twice).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.datacache import check_fields

from ..arrays import check_classes
from ..synthetic_shapes.config import PROFILES as SHAPES_PROFILES
from ..synthetic_shapes.config import SyntheticShapesConfig
from ..synthetic_shapes.vocab import CATEGORIES

GENERATOR_VERSION = "1"  # bump whenever the voxelisation changes: it is part of the cache fingerprint
SHAPES_FIELDS = ("seed", "categories", "train_per_class", "val_per_class", "test_per_class", "workers",
                 "checksum_all")  # passed on to synthetic_shapes


@dataclass
class SyntheticVoxelsConfig:
    seed: int = 0
    categories: list[str] = field(default_factory=lambda: list(CATEGORIES))
    # shapes per category in each split (synthetic_shapes' defaults)
    train_per_class: int = 200
    val_per_class: int = 25
    test_per_class: int = 50
    # the synthetic_shapes profile the meshes come from ("paper": its defaults); its counts, seed and
    # categories are replaced by the fields above
    shapes_profile: str = "quick"
    resolution: int = 32  # voxels per side (VoxNet, 3D ShapeNets)
    # the grid spans the cube of side 1 + padding around the shapes' [-0.5, 0.5]^3 (0.1: Occupancy Networks'
    # voxel inputs)
    padding: float = 0.1
    # training items turned by a random angle about the up (y) axis (nearest-voxel resampling)
    rotate: bool = False
    workers: int = 2  # generation processes, capped at the CPU count
    # hash every cached file when opening instead of only those whose size or mtime changed
    checksum_all: bool = False

    def shapes_config(self) -> SyntheticShapesConfig:
        """The synthetic_shapes configuration whose meshes are voxelised."""
        profile = {} if self.shapes_profile == "paper" else dict(SHAPES_PROFILES[self.shapes_profile])
        overrides = {name: getattr(self, name) for name in SHAPES_FIELDS}
        overrides["categories"] = list(overrides["categories"])
        return SyntheticShapesConfig(**{**profile, **overrides})

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        if self.shapes_profile != "paper" and self.shapes_profile not in SHAPES_PROFILES:
            raise ValueError(f"synthetic_voxels: shapes_profile must be one of "
                             f"{['paper', *SHAPES_PROFILES]}, got {self.shapes_profile!r}")
        check_classes("synthetic_voxels", self.categories, CATEGORIES)
        check_fields("synthetic_voxels", self, counts=("train_per_class", "val_per_class", "test_per_class",
                                                       "resolution", "workers"),
                     non_negative=("seed", "padding"))
        self.shapes_config().validate()

    def generation_params(self) -> dict[str, Any]:
        return {"resolution": self.resolution, "padding": self.padding}


# Field overrides per profile: the shapes of synthetic_shapes' own smoke and quick profiles (shared caches).
PROFILES: dict[str, dict[str, Any]] = {
    name: {"shapes_profile": name, **{k: SHAPES_PROFILES[name][k]
                                      for k in ("train_per_class", "val_per_class", "test_per_class")}}
    for name in ("smoke", "quick")
}
