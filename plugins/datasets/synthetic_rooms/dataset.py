"""The ``synthetic_rooms`` dataset: procedural indoor rooms with per-face ScanNet20 labels, scanned by a virtual
depth camera (see :mod:`.room`, :mod:`.scan`, :mod:`.generate`), prepared as NDF/RangeUDF prepare real scans
(:mod:`harness_plugins.datasets.scenes`).

Items: ``points`` (a subset of the room's scan) with ``points_semantic``, ``query`` with exact ``udf`` and
nearest-face ``semantic``, ``surface``/``surface_semantic`` (from the full mesh), ``index``. ``mesh_path``
gives the normalised room mesh. Generated once per configuration into
``<cache_dir>/synthetic_rooms/<fingerprint>/`` and verified on every build.
"""
from __future__ import annotations

import functools
from pathlib import Path

from harness import datacache
from harness.datacache import FileRecord, plain_copy

from ..scenes import SCANNET20, SceneDataset, prepare_cache, scene_info, write_scene
from .config import GENERATOR_VERSION, SyntheticRoomsConfig

NAME = "synthetic_rooms"


def fingerprint(config: SyntheticRoomsConfig) -> str:
    return datacache.fingerprint({"generator_version": GENERATOR_VERSION, **config.generation_params()})


def split_sizes(config: SyntheticRoomsConfig) -> dict[str, int]:
    return {"train": config.train_rooms, "val": config.val_rooms, "test": config.test_rooms}


def _generate_files(config: SyntheticRoomsConfig, directory: Path, split: str, index: int) -> dict[str, FileRecord]:
    """Worker job: generate one room and write its files."""
    from .generate import generate_scene  # heavy (manifold3d, trimesh, igl): only generating processes import it

    arrays, mesh = generate_scene(config, split, index)
    return write_scene(directory, split, index, arrays, mesh)


def build(config: SyntheticRoomsConfig, cache_dir: str | Path) -> SceneDataset:
    """Validate ``config``, generate or repair its cache under ``cache_dir``, and open it."""
    config = plain_copy(config, SyntheticRoomsConfig)
    config.validate()
    identity = fingerprint(config)
    directory = Path(cache_dir) / NAME / identity
    sizes = split_sizes(config)
    jobs = [(split, index) for split, size in sizes.items() for index in range(size)]
    header = {"dataset": NAME, "fingerprint": identity, "generator_version": GENERATOR_VERSION,
              "config": config.generation_params()}
    cache = prepare_cache(directory, header, jobs, functools.partial(_generate_files, config, directory), True,
                          config, f"generating {NAME}")
    scenes = {split: [f"{split}/{index:06d}" for index in range(size)] for split, size in sizes.items()}
    return SceneDataset(scene_info(NAME, SCANNET20, identity), config, cache, scenes, has_mesh=True)
