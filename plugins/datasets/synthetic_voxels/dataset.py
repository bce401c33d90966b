"""The ``synthetic_voxels`` dataset: the synthetic shapes voxelised at 32^3, the embedded stand-in for the
voxelised ModelNet40 that VoxNet and 3D ShapeNets classify.

The shapes are built through synthetic_shapes' own ``build`` (its cache is generated or verified first, and
shared with synthetic_shapes runs of the same configuration); each watertight mesh is voxelised by the
inside test of every voxel centre (see :mod:`.voxelize`) on the grid of side ``1 + padding`` around the
normalised shapes. Items: ``voxels`` ``[1, R, R, R]`` float32 (1 inside, 0 outside; axes x, y, z with y up),
``label`` (the shape's category), ``index``; training items are turned about the up axis by a random angle
when ``rotate`` is set. ``mesh_path`` is the voxelised mesh (synthetic_shapes' cached one).

Grids are stored as ``<cache_dir>/synthetic_voxels/<fingerprint>/<split>/<chunk>.npy`` (``uint8 [n, 1, R, R, R]``,
64 shapes per chunk) and verified on every build by :func:`harness.datacache.ensure_cache`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import data as keys
from harness.data import DatasetInfo, check_split
from harness.datacache import DataFileError, fingerprint, load_npz, plain_copy, shape_files

from ..arrays import ArraySplit, ChunkReader, ensure_chunks
from ..synthetic_shapes.dataset import SyntheticShapes
from ..synthetic_shapes.dataset import build as build_shapes
from .config import GENERATOR_VERSION, SyntheticVoxelsConfig
from .voxelize import rotate_up, voxelize

NAME = "synthetic_voxels"
CHUNK = 64  # shapes per cached file


class VoxelJob:
    """``generate(config, split, indices)`` for :func:`..arrays.ensure_chunks`: the grids of the cached shapes
    in ``shapes_dir`` (picklable, for the worker processes)."""

    def __init__(self, shapes_dir: Path, categories: int) -> None:
        self.shapes_dir, self.categories = shapes_dir, categories

    def __call__(self, config: SyntheticVoxelsConfig, split: str, indices: range) -> np.ndarray:
        r = config.resolution
        grids = np.zeros((len(indices), 1, r, r, r), dtype=np.uint8)
        for row, index in enumerate(indices):
            path = self.shapes_dir / shape_files(split, index)[0]
            shape = load_npz(path, ("vertices", "faces", "label"))
            if int(shape["label"]) != index % self.categories:
                raise DataFileError(path, f"label {int(shape['label'])}, expected {index % self.categories}")
            grids[row, 0] = voxelize(shape["vertices"], shape["faces"], r, config.padding)
        return grids


class SyntheticVoxels:
    """A built (voxelised and verified) synthetic voxels dataset."""

    def __init__(self, config: SyntheticVoxelsConfig, shapes: SyntheticShapes, directory: Path) -> None:
        self.config, self.shapes, self.directory = config, shapes, directory
        self.sizes = shapes.sizes
        r = config.resolution
        self.info = DatasetInfo(name=NAME, modalities=(keys.VOXELS,), targets=(keys.LABEL,),
                                classes=shapes.info.classes, splits=shapes.info.splits,
                                fingerprint=dataset_fingerprint(config, shapes), input_shapes={keys.VOXELS: (1, r, r, r)})

    def split(self, name: str) -> ArraySplit:
        check_split(self.info, name)
        size = self.sizes[name]
        reader = ChunkReader(self.directory, name, size, CHUNK, self.info.input_shapes[keys.VOXELS])
        return ArraySplit(NAME, name, keys.VOXELS, reader, np.arange(size) % len(self.info.classes), self.config.seed,
                          augment=rotate_up if self.config.rotate else None, divisor=None)

    def mesh_path(self, split: str, index: int) -> Path:
        """The voxelised mesh (normalised into [-0.5, 0.5]^3)."""
        return self.shapes.mesh_path(split, index)


def dataset_fingerprint(config: SyntheticVoxelsConfig, shapes: SyntheticShapes) -> str:
    return fingerprint({"dataset": NAME, "generator_version": GENERATOR_VERSION, "shapes": shapes.info.fingerprint,
                        **config.generation_params()})


def build(config: SyntheticVoxelsConfig, cache_dir: str | Path) -> SyntheticVoxels:
    """Validate ``config``, build (or verify) its synthetic shapes, voxelise them (or verify the cached grids)."""
    config = plain_copy(config, SyntheticVoxelsConfig)
    config.validate()
    shapes = build_shapes(config.shapes_config(), cache_dir)
    identity = dataset_fingerprint(config, shapes)
    directory = Path(cache_dir) / NAME / identity
    header = {"dataset": NAME, "fingerprint": identity, "generator_version": GENERATOR_VERSION,
              "shapes": shapes.info.fingerprint, "config": config.generation_params()}
    job = VoxelJob(shapes.directory, len(shapes.info.classes))
    ensure_chunks(directory, header, shapes.sizes, CHUNK, job, config,
                  workers=config.workers, checksum_all=config.checksum_all, desc=f"voxelising {NAME}")
    return SyntheticVoxels(config, shapes, directory)
