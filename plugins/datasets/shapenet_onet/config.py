"""Configuration of the ``shapenet_onet`` loader (no heavy imports: the registry reads it without torch).

Defaults are Occupancy Networks' (300 noisy input points, 2048 training queries, 100k points for IoU and
for the surface metrics, 224-pixel images from Choy et al.'s 24 views; derived occupancy as its
``points.npz``: 100k points uniform in the box of side 1.1).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.datacache import OccupancySampling, check_fields, check_split_fractions

LOADER_VERSION = "1"  # bump whenever loaded or derived content changes: it is part of the fingerprint

SOURCES = ("points", "voxels", "mesh")  # where a shape's occupancy can come from
LAYOUT = ("<root>/metadata.yaml, <root>/<synset>/<model>/pointcloud.npz, points.npz (or dataset.mesh_root), "
          "img_choy2016/NNN.jpg, and optionally <root>/<synset>/{train,val,test}.lst (Occupancy Networks' ShapeNet)")
MESH_LAYOUT = ("<mesh_root>/<synset>/<model>/models/model_normalized.obj and model_normalized.solid.binvox "
               "(ShapeNetCore.v2)")


@dataclass
class ONetFields:
    root: str = ""  # the ONet dataset folder (required)
    # ShapeNetCore.v2, for shapes without points.npz: their occupancy is derived from its voxels or mesh
    mesh_root: str = ""
    classes: list[str] = field(default_factory=list)  # synset ids; empty: all of metadata.yaml
    # per shape, the first available source of occupancy: ONet's points.npz, the solid voxels, the mesh
    # (its winding number: unreliable for ShapeNet's many open, double-sided meshes, hence last)
    occupancy_from: list[str] = field(default_factory=lambda: list(SOURCES))
    # leave out shapes none of whose sources has its files (a partial download), logged and counted in the
    # fingerprint, instead of failing (as shapenetpart's skip_missing_meshes)
    skip_missing: bool = True
    # for a synset without {train,val,test}.lst: its models split by a seeded hash of their ids
    split_fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "val": 0.1, "test": 0.2})
    strict_splits: bool = False  # a model listed in two .lst files: refuse the lists (default: warn)
    seed: int = 0
    image_size: int = 224  # side the 137-pixel views are resized to (ONet's ResNet input)
    n_views: int = 24  # views per shape in img_choy2016


@dataclass
class ShapeNetONetConfig(OccupancySampling, ONetFields):
    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        check_fields("shapenet_onet", self, counts=("image_size", "n_views"), non_negative=("seed",))
        self.check_sampling("shapenet_onet")
        sources = list(self.occupancy_from)
        if not sources or not set(sources) <= set(SOURCES) or len(set(sources)) != len(sources):
            raise ValueError(f"shapenet_onet: occupancy_from must be distinct names of {list(SOURCES)}, got {sources}")
        check_split_fractions("shapenet_onet", self.split_fractions)

    def generation_params(self) -> dict[str, Any]:
        """The fields that change derived samples (the rest only change how items draw from them)."""
        return {**self.sampling_params(), "seed": self.seed, "occupancy_from": list(self.occupancy_from)}


PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_occupancy": 4096, "query_points": 1024, "eval_surface_points": 2048, "iou_points": 2048,
              "image_size": 64},
    "quick": {"n_occupancy": 20_000, "query_points": 1024, "eval_surface_points": 10_000, "iou_points": 10_000},
}
