"""Configuration of the synthetic shapes dataset (no heavy imports: the registry reads it without torch).

Defaults are paper-sized (Occupancy Networks: 100k occupancy samples and 100k surface points per shape,
300 noisy input points with sigma 0.005, 2048 training queries, 24 rendered views of 137x137);
``PROFILES`` shrink them for CI and for quick local runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.config_checks import is_number

from .vocab import CATEGORIES, CATEGORY_PARTS

GENERATOR_VERSION = "2"  # bump whenever generated content changes: it is part of the cache fingerprint

# Fields that change the generated files, hence the cache fingerprint; the rest only change how items
# are drawn from the cache (or how fast it is built).
GENERATION_FIELDS = (
    "seed",
    "categories",
    "train_per_class",
    "val_per_class",
    "test_per_class",
    "edge_length",
    "n_occupancy",
    "near_fraction",
    "near_sigma",
    "padding",
    "n_surface",
    "views",
    "image_size",
    "view_radius",
    "view_elevation",
    "view_focal",
)


@dataclass
class SyntheticShapesConfig:
    seed: int = 0
    categories: list[str] = field(default_factory=lambda: list(CATEGORIES))
    # shapes per category in each split
    train_per_class: int = 200
    val_per_class: int = 25
    test_per_class: int = 50
    # target edge length of the union mesh, in normalised units (the longest side is 1); the
    # nearest-vertex part labels are only as fine as this
    edge_length: float = 0.02
    # stored occupancy samples per shape: the first (1 - near_fraction) are uniform in the box of side
    # 1 + padding, the rest are surface points plus N(0, near_sigma) noise
    n_occupancy: int = 100_000
    near_fraction: float = 0.5
    near_sigma: float = 0.01
    padding: float = 0.1
    n_surface: int = 100_000  # stored surface points (with normals and part labels) per shape
    # rendered views per shape (as Choy et al.'s, which ONet trains on: 24 views of 137x137 at random
    # azimuths); a pinhole camera at view_radius from the origin and view_elevation degrees up looks at the
    # origin, with a focal length of view_focal image widths (1.0 frames the unit cube from radius 2)
    views: int = 24
    image_size: int = 137
    view_radius: float = 2.0
    view_elevation: float = 25.0
    view_focal: float = 1.0
    # what one item draws from the stored samples
    input_points: int = 300
    input_noise: float = 0.005
    query_points: int = 2048
    eval_surface_points: int = 100_000
    # uniform points for volumetric IoU in val/test items; at most the number of stored uniform samples
    # (ONet uses 100k, here half of the 100k stored samples are near-surface ones)
    iou_points: int = 50_000
    workers: int = 2  # generation processes, capped at the CPU count
    # hash every cached file when opening instead of only those whose size or mtime changed
    checksum_all: bool = False

    @property
    def n_uniform(self) -> int:
        """How many of the stored occupancy samples are uniform (the split ``sample_queries`` makes)."""
        return self.n_occupancy - int(round(self.near_fraction * self.n_occupancy))

    def generation_params(self) -> dict[str, Any]:
        """The parameters the cache fingerprint is computed from."""
        params = {name: getattr(self, name) for name in GENERATION_FIELDS}
        params["categories"] = list(params["categories"])
        return params

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        unknown = [c for c in self.categories if c not in CATEGORY_PARTS]
        if unknown:
            raise ValueError(f"synthetic_shapes: unknown categories {unknown}; available: {list(CATEGORIES)}")
        if not self.categories or len(set(self.categories)) != len(self.categories):
            raise ValueError(f"synthetic_shapes: categories must be non-empty and unique, got "
                             f"{list(self.categories)}; available: {list(CATEGORIES)}")
        counts = ("train_per_class", "val_per_class", "test_per_class", "n_occupancy", "n_surface",
                  "input_points", "query_points", "eval_surface_points", "iou_points", "workers", "views",
                  "image_size")
        checks: list[tuple[str, bool, str]] = [("seed", _is_int(self.seed) and self.seed >= 0, "an integer >= 0")]
        checks += [(name, _is_int(getattr(self, name)) and getattr(self, name) >= 1, "an integer >= 1")
                   for name in counts]
        checks += [
            ("edge_length", is_number(self.edge_length) and 0 < self.edge_length <= 1, "a number in (0, 1]"),
            ("near_fraction", is_number(self.near_fraction) and 0 <= self.near_fraction <= 1, "a number in [0, 1]"),
            ("near_sigma", is_number(self.near_sigma) and self.near_sigma > 0, "a number > 0"),
            ("padding", is_number(self.padding) and self.padding >= 0, "a number >= 0"),
            ("input_noise", is_number(self.input_noise) and self.input_noise >= 0, "a number >= 0"),
            # outside the bounding sphere of the unit cube, so no shape reaches the camera
            ("view_radius", is_number(self.view_radius) and self.view_radius > 3 ** 0.5 / 2,
             "a number > sqrt(3)/2"),
            # strictly between the poles, where "up" would be the viewing direction
            ("view_elevation", is_number(self.view_elevation) and -90 < self.view_elevation < 90,
             "a number in (-90, 90)"),
            ("view_focal", is_number(self.view_focal) and self.view_focal > 0, "a number > 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"synthetic_shapes: {name} must be {expected}, got {getattr(self, name)!r}")
        for name, limit, source in (("query_points", self.n_occupancy, "n_occupancy"),
                                    ("input_points", self.n_surface, "n_surface"),
                                    ("eval_surface_points", self.n_surface, "n_surface"),
                                    ("iou_points", self.n_uniform, "the uniform occupancy samples "
                                                                  "(n_occupancy * (1 - near_fraction))")):
            if getattr(self, name) > limit:
                raise ValueError(f"synthetic_shapes: {name}={getattr(self, name)} exceeds {source} = {limit}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Field overrides per profile. smoke: a CI-sized dataset of 32 shapes; quick: 424 shapes (200 to test: one moves a
# classification figure by 0.5%) that generate in about 1.5 minutes on 2 cores.
PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "train_per_class": 2, "val_per_class": 1, "test_per_class": 1,
        "edge_length": 0.05,
        "n_occupancy": 4096, "n_surface": 4096,
        "query_points": 1024, "eval_surface_points": 2048, "iou_points": 2048,
        "image_size": 32,
    },
    "quick": {
        "train_per_class": 24, "val_per_class": 4, "test_per_class": 25,
        "edge_length": 0.03,
        "n_occupancy": 10_000, "n_surface": 20_000, "query_points": 512,
        "eval_surface_points": 10_000, "iou_points": 5_000,
        "image_size": 64,
    },
}

