"""Configuration and vocabulary of the ShapeNetPart loaders (no heavy imports: the registry reads it).

The 16 categories, their ShapeNetCore synsets (as in the benchmark's ``synsetoffset2category.txt``) and
their global part ids (50 in all, in category order). Part names are ``<Category>/<k>``, the k-th part of
the category, since the benchmark files carry numbers only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.datacache import OccupancySampling, check_fields, check_split_fractions

LOADER_VERSION = "1"  # bump whenever loaded content changes: it is part of the fingerprint

BENCHMARK = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
LAYOUT = (f"<root>/{BENCHMARK}/<synset>/<id>.txt with 'x y z nx ny nz part' per line (global part ids 0-49), "
          f"and optionally <root>/{BENCHMARK}/train_test_split/shuffled_{{train,val,test}}_file_list.json")
MESH_LAYOUT = "<mesh_root>/<synset>/<id>/models/model_normalized.obj (ShapeNetCore.v2)"

# category -> (synset, number of parts); global part ids run through the categories in this order
CATEGORIES: dict[str, tuple[str, int]] = {
    "Airplane": ("02691156", 4),
    "Bag": ("02773838", 2),
    "Cap": ("02954340", 2),
    "Car": ("02958343", 4),
    "Chair": ("03001627", 4),
    "Earphone": ("03261776", 3),
    "Guitar": ("03467517", 3),
    "Knife": ("03624134", 2),
    "Lamp": ("03636649", 4),
    "Laptop": ("03642806", 2),
    "Motorbike": ("03790512", 6),
    "Mug": ("03797390", 2),
    "Pistol": ("03948459", 3),
    "Rocket": ("04099429", 3),
    "Skateboard": ("04225987", 3),
    "Table": ("04379243", 3),
}
SYNSETS: dict[str, str] = {synset: category for category, (synset, _) in CATEGORIES.items()}


def part_vocabulary() -> tuple[tuple[str, ...], dict[str, tuple[int, ...]]]:
    """The 50 global part names (index = part label) and category -> its global part ids."""
    parts: list[str] = []
    per_category: dict[str, tuple[int, ...]] = {}
    for category, (_, count) in CATEGORIES.items():
        per_category[category] = tuple(range(len(parts), len(parts) + count))
        parts += [f"{category}/{k}" for k in range(count)]
    return tuple(parts), per_category


@dataclass
class PartFields:
    root: str = ""  # the folder holding BENCHMARK (or BENCHMARK itself); required
    categories: list[str] = field(default_factory=list)  # empty: all 16; otherwise these, in this label order
    input_points: int = 2048  # PointNet's part segmentation input (and query) points
    normalize: bool = True  # centre on the centroid and scale into the unit sphere, as PointNet++
    # without the official split lists: each category's shapes split by a seeded hash of their ids
    split_fractions: dict[str, float] = field(default_factory=lambda: {"train": 0.7, "val": 0.1, "test": 0.2})
    strict_splits: bool = False  # a shape in two of the official split lists: refuse the lists (default: warn)
    seed: int = 0
    # ShapeNetCore.v2 (MESH_LAYOUT): when set, items are the implicit task's, with occupancy and part labels
    # of query points derived from each shape's mesh (clouds then always take ONet's box normalisation, as
    # the query box of side 1 + padding must hold the shape; ``normalize`` is for the per-point task)
    mesh_root: str = ""
    skip_missing_meshes: bool = True  # leave out shapes without a mesh (counted in the fingerprint), else fail
    eval_surface_points: int = 1024  # a cloud has only a few thousand points to evaluate the surface on


@dataclass
class ShapeNetPartConfig(PartFields, OccupancySampling):
    def validate(self) -> None:
        """Raise a ValueError naming the first bad field."""
        check_fields("shapenetpart", self, counts=("input_points",), non_negative=("seed",))
        unknown = [c for c in self.categories if c not in CATEGORIES]
        if unknown or len(set(self.categories)) != len(self.categories):
            raise ValueError(f"shapenetpart: categories must be unique names of {list(CATEGORIES)}, "
                             f"got {list(self.categories)}")
        check_split_fractions("shapenetpart", self.split_fractions)
        if self.mesh_root:
            self.check_sampling("shapenetpart")

    def generation_params(self) -> dict[str, Any]:
        """The fields that change derived samples (the rest only change how items draw from them)."""
        return {**self.sampling_params(), "seed": self.seed, "skip_missing_meshes": self.skip_missing_meshes}


@dataclass
class ShapeNetPartImplicitConfig(ShapeNetPartConfig):
    input_points: int = 300  # Occupancy Networks' noisy input points

    def validate(self) -> None:
        """As ``shapenetpart``'s, and the implicit task needs the meshes."""
        if not self.mesh_root:
            raise ValueError(f"shapenetpart_implicit: set dataset.mesh_root=/path/to/ShapeNetCore.v2 (expected "
                             f"layout: {MESH_LAYOUT})")
        super().validate()


PROFILES: dict[str, dict[str, Any]] = {"smoke": {"input_points": 512}, "quick": {"input_points": 1024}}
IMPLICIT_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_occupancy": 4096, "query_points": 1024, "iou_points": 2048},
    "quick": {"n_occupancy": 20_000, "query_points": 1024, "iou_points": 10_000},
}
