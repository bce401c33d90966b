"""Configuration of the ModelNet40 loaders (no heavy imports: the registry reads it without torch).

``modelnet40`` derives Occupancy Networks samples from the OFF meshes (defaults as ONet's ``points.npz`` and
``pointcloud.npz``: 100k uniform occupancy points, 100k surface points); ``modelnet40_resampled`` reads the
PointNet++ point clouds (PointNet's 1024 input points). ModelNet has no validation split: one is carved
from the training shapes of each class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.datacache import OccupancySampling, check_fields

LOADER_VERSION = "1"  # bump whenever loaded or derived content changes: it is part of the fingerprint

MESH_LAYOUT = "<root>/<class>/{train,test}/<class>_NNNN.off (ModelNet40 or ModelNet10 as distributed)"
RESAMPLED_LAYOUT = ("<root>/modelnet40_shape_names.txt, <root>/modelnet40_{train,test}.txt (ids like "
                    "airplane_0627) and <root>/<class>/<id>.txt with 'x,y,z,nx,ny,nz' per line "
                    "(modelnet40_normal_resampled)")


@dataclass
class ModelNetFields:
    """What both loaders share: where the data is, which classes, and how validation is carved from train."""

    root: str = ""  # the dataset folder (required)
    classes: list[str] = field(default_factory=list)  # empty: all; otherwise these, in this label order
    val_fraction: float = 0.1  # of each class's training shapes, chosen by a seeded hash of the file name
    seed: int = 0

    def check_common(self, dataset: str) -> None:
        check_fields(dataset, self, fractions=("val_fraction",), non_negative=("seed",))
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{dataset}: classes must be unique, got {list(self.classes)}")


@dataclass
class ModelNet40Config(OccupancySampling, ModelNetFields):
    n_surface: int = 100_000  # stored surface points (with normals) per shape

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        self.check_common("modelnet40")
        self.check_sampling("modelnet40")
        check_fields("modelnet40", self, counts=("n_surface",))
        for name in ("input_points", "eval_surface_points"):
            if getattr(self, name) > self.n_surface:
                raise ValueError(f"modelnet40: {name}={getattr(self, name)} exceeds n_surface = {self.n_surface}")

    def generation_params(self) -> dict[str, Any]:
        """The fields that change the cached samples (the rest only change how items draw from them)."""
        return {**self.sampling_params(), "n_surface": self.n_surface, "seed": self.seed}


@dataclass
class ModelNet40ResampledConfig(ModelNetFields):
    subset: str = "modelnet40"  # the list files' prefix: modelnet40 or modelnet10
    input_points: int = 1024  # PointNet
    sampling: str = "first"  # "first" points of the file (as PointNet++'s loader) or a "random" subset
    # std of Gaussian noise added to the input points in every split (0.02: PointNet's robustness test,
    # which the generalising paper's Table 1 follows)
    jitter: float = 0.0
    normalize: bool = True  # centre on the centroid and scale into the unit sphere, as PointNet++
    # leave out listed shapes whose files are absent (a partial download) instead of failing
    skip_missing: bool = False
    strict_splits: bool = False  # a shape id in both list files: refuse the lists (default: warn)

    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        self.check_common("modelnet40_resampled")
        check_fields("modelnet40_resampled", self, counts=("input_points",), non_negative=("jitter",))
        if self.sampling not in ("first", "random"):
            raise ValueError(f"modelnet40_resampled: sampling must be 'first' or 'random', got {self.sampling!r}")


# Field overrides per profile: real data, so only the per-shape sample counts shrink.
MESH_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_occupancy": 4096, "n_surface": 4096, "query_points": 1024, "eval_surface_points": 2048,
              "iou_points": 2048},
    "quick": {"n_occupancy": 20_000, "n_surface": 20_000, "query_points": 1024, "eval_surface_points": 10_000,
              "iou_points": 10_000},
}
