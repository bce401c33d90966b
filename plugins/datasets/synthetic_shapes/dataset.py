"""The ``synthetic_shapes`` dataset: procedural part-labelled shapes, the harness's embedded default data.

Eight categories (chair, table, lamp, airplane, mug, car, bench, bottle) are composed of boxes, cylinders,
cones, spheres, tori and capsules with random proportions and optional parts; their union is a watertight
mesh normalised into ``[-0.5, 0.5]^3`` (Occupancy Networks convention). Each category has its own parts,
and the parts of the configured categories share one global vocabulary (``info.parts``, like
ShapeNetPart's 50 part ids). Index ``i`` of a split has class ``i mod C``.

Items carry the keys of :mod:`harness.data` (``points``, ``image``, ``query``, ``occupancy``, ``part``,
``label``, ``surface``, ``normals``, ``surface_part``, ``index``), and val/test items two more, for
volumetric IoU as Occupancy Networks evaluates it (on points uniform in the padded box):

========================  ============  =====================================================
``iou_query``             [I,3] f32     val/test only: uniform points in the box of side 1 + padding
``iou_occupancy``         [I] f32       val/test only: 1 inside, 0 outside (for ``iou_query``)
========================  ============  =====================================================

``image`` is one of the shape's rendered views (see :mod:`.render`), grey repeated to RGB: a random one in
training, view 0 in val/test.

``part`` is the part of the nearest labelled mesh vertex for query points inside the shape and -1
outside (see :mod:`.generate`). Training items draw fresh subsets and noise with a generator seeded from
torch's global RNG (which DataLoader seeds per worker and epoch); val/test items are the same every time,
and ``surface`` is a fixed subset of each shape's surface samples in every split.

The data is generated once per configuration into ``<cache_dir>/synthetic_shapes/<fingerprint>/`` and
verified on every build (see :mod:`.cache`).
"""
from __future__ import annotations

import dataclasses
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset as TorchDataset

from harness import data as keys
from harness.data import DatasetInfo, check_split

from .cache import NAME, ensure_cache, fingerprint, shape_files, split_sizes
from .config import SyntheticShapesConfig
from .vocab import part_vocabulary

# the stored arrays an item draws from (npz members load lazily, so the mesh is never read here)
ITEM_SOURCES = ("surface", "normals", "surface_part", "occ_points", "occupancy", "occ_part", "n_uniform", "label",
                "views")


class ShapeSplit(TorchDataset):
    """One split of the cached shapes; each item reads one shape file."""

    def __init__(self, config: SyntheticShapesConfig, directory: Path, split: str, size: int) -> None:
        self.config = config
        self.directory = directory
        self.split = split
        self.size = size
        self.train = split == "train"

    def __len__(self) -> int:
        return self.size

    def _fixed_rng(self, index: int, purpose: str) -> np.random.Generator:
        """A generator fixed by (seed, split, index, purpose): repeatable draws independent of each other."""
        key = (zlib.crc32(f"{self.split}/{purpose}".encode()), index)
        return np.random.default_rng(np.random.SeedSequence(self.config.seed, spawn_key=key))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        if not 0 <= index < self.size:
            raise IndexError(f"{NAME} {self.split} has {self.size} items, asked for {index}")
        cfg = self.config
        with np.load(self.directory / shape_files(self.split, index)[0]) as stored:
            shape = {name: stored[name] for name in ITEM_SOURCES}
        # numpy, not torch, does the sampling and gathering: torch's multi-threaded indexing of these small
        # arrays is tens of times slower when the CPU is busy (e.g. with DataLoader workers)
        if self.train:  # a fresh draw, seeded from torch's RNG, which DataLoader seeds per worker and epoch
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        else:
            rng = self._fixed_rng(index, "item")
        surface, occ_points = shape["surface"], shape["occ_points"]
        points = surface[rng.choice(len(surface), cfg.input_points, replace=False)]
        points = points + np.float32(cfg.input_noise) * rng.standard_normal(points.shape, dtype=np.float32)
        query = rng.choice(len(occ_points), cfg.query_points, replace=False)
        fixed = self._fixed_rng(index, "surface").choice(len(surface), cfg.eval_surface_points, replace=False)
        item = {
            keys.POINTS: points,
            keys.QUERY: occ_points[query],
            keys.OCCUPANCY: shape["occupancy"][query].astype(np.float32),
            keys.PART: shape["occ_part"][query].astype(np.int64),
            keys.LABEL: shape["label"].astype(np.int64),
            keys.SURFACE: surface[fixed],
            keys.NORMALS: shape["normals"][fixed],
            keys.SURFACE_PART: shape["surface_part"][fixed].astype(np.int64),
            keys.INDEX: np.int64(index),
        }
        views = shape["views"]
        view = views[rng.integers(len(views))] if self.train else views[0]
        item[keys.IMAGE] = np.repeat(view[None].astype(np.float32) / 255, 3, axis=0)
        if not self.train:
            uniform = rng.choice(int(shape["n_uniform"]), cfg.iou_points, replace=False)
            item["iou_query"] = occ_points[uniform]
            item["iou_occupancy"] = shape["occupancy"][uniform].astype(np.float32)
        return {key: torch.from_numpy(np.asarray(value)) for key, value in item.items()}


class SyntheticShapes:
    """A built (generated and verified) synthetic shapes dataset."""

    def __init__(self, config: SyntheticShapesConfig, directory: Path) -> None:
        self.config = config
        self.directory = directory
        self.sizes = split_sizes(config)
        parts, parts_per_class = part_vocabulary(config.categories)
        self.info = DatasetInfo(
            name=NAME,
            modalities=(keys.POINTS, keys.IMAGE),
            targets=("occupancy", "part", "label"),
            classes=tuple(config.categories),
            parts=parts,
            parts_per_class=parts_per_class,
            splits=tuple(self.sizes),
            fingerprint=fingerprint(config),
        )

    def split(self, name: str) -> ShapeSplit:
        check_split(self.info, name)
        return ShapeSplit(self.config, self.directory, name, self.sizes[name])

    def mesh_path(self, split: str, index: int) -> Path:
        check_split(self.info, split)
        if not 0 <= index < self.sizes[split]:
            raise IndexError(f"{NAME} {split} has {self.sizes[split]} shapes, asked for {index}")
        return self.directory / shape_files(split, index)[1]


def build(config: SyntheticShapesConfig, cache_dir: str | Path) -> SyntheticShapes:
    """Validate ``config``, generate or repair its cache under ``cache_dir``, and open it."""
    # a plain copy: the harness hands over a generated subclass (with ``name``) that worker processes cannot
    # unpickle, and list-like categories become a list
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(SyntheticShapesConfig)}
    config = SyntheticShapesConfig(**{**fields, "categories": list(fields["categories"])})
    config.validate()
    return SyntheticShapes(config, ensure_cache(config, cache_dir))
