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
from pathlib import Path

import numpy as np

from harness import data as keys
from harness.data import DatasetInfo, check_split
from harness.datacache import SAMPLE_ARRAYS, CachedSplit, ItemSizes, VerifiedCache

from .cache import NAME, ensure_cache, fingerprint, shape_files, split_sizes
from .config import SyntheticShapesConfig
from .vocab import part_vocabulary

class ShapeSplit(CachedSplit):
    """One split of the cached shapes: the shared implicit-shape items plus a rendered view as ``image``."""

    arrays = SAMPLE_ARRAYS + ("views",)

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        shape = self.shape(index)
        item = self.draw_from(shape, index, rng)
        views = shape["views"]
        view = views[rng.integers(len(views))] if self.train else views[0]
        item[keys.IMAGE] = np.repeat(view[None].astype(np.float32) / 255, 3, axis=0)
        return item


class SyntheticShapes:
    """A built (generated and verified) synthetic shapes dataset."""

    def __init__(self, config: SyntheticShapesConfig, cache: VerifiedCache) -> None:
        self.config = config
        self.cache = cache
        self.directory = cache.directory
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
        return ShapeSplit(NAME, name, self.sizes[name], self.config.seed, ItemSizes.of(self.config), self.cache)

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
