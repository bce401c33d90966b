"""The ``scenenn`` dataset: SceneNN scene meshes with per-vertex class ids, prepared as the contextualising paper
prepares them (NDF's recipe, :mod:`harness_plugins.datasets.scenes`).

Layout: ``<root>/<scene>.ply`` or ``<root>/<scene>/<scene>.ply``, a triangle mesh (ASCII or binary PLY) whose
vertices carry a class id in the ``label`` property (``label_property``). The paper uses SceneNN with "the same
40 classes as ScanNet ... the 20 class subset", so ids are NYU40 ids mapped to ScanNet's 20 benchmark classes
by default; ``classes`` + ``label_map`` (raw id -> class name) configure any other vocabulary. Unmapped ids
are -1. A face takes the label two or three of its vertices share (-1 if all differ); distances and labels
are exact to the mesh (``mesh_path`` gives the normalised mesh); input points are uniform mesh samples.

Splits: ``<root>/train.txt`` and ``<root>/test.txt`` (scene ids) if both exist, with ``val_fraction`` of train
carved out as val; otherwise the scenes found are split by a seeded hash of their ids (``split_fractions``,
by default the paper's 56/20 of 76 scans with 6 of the 56 as val).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data import SPLITS
from harness.datacache import DataFileError, FileRecord, file_stats, plain_copy, require_root

from ..ply_io import read_ply
from ..scenes import (Entry, SceneDataset, assign_splits, face_majority, map_ids, mesh_scene, normalise,
                      open_scenes, scene_rng, write_scene)
from .config import LAYOUT, LOADER_VERSION, SceneNNConfig

NAME = "scenenn"
LISTS = {"train": "train.txt", "test": "test.txt"}


def find_scenes(root: Path) -> dict[str, str]:
    """Scene id -> its mesh file."""
    scenes: dict[str, str] = {}
    for path in sorted([*root.glob("*.ply"), *(p / f"{p.name}.ply" for p in root.iterdir() if p.is_dir())]):
        if not path.is_file():
            continue
        if path.stem in scenes:
            raise DataFileError(path, f"scene {path.stem} is also at {scenes[path.stem]}")
        scenes[path.stem] = str(path)
    if not scenes:
        raise FileNotFoundError(f"{NAME}: no scene meshes in {root}; expected layout: {LAYOUT}")
    return scenes


def read_scene(path: Path, label_property: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices [V,3], faces [F,3] and per-vertex raw ids of a scene mesh."""
    ply = read_ply(path)
    if not len(ply.faces):
        raise DataFileError(path, "no faces")
    if label_property not in ply.vertex:
        raise DataFileError(path, f"no {label_property!r} vertex property (it has {', '.join(ply.vertex)}); set "
                                  f"dataset.label_property")
    ids = ply.vertex[label_property]
    if ids.dtype.kind == "f" and not (np.isfinite(ids).all() and (ids == np.round(ids)).all()):
        raise DataFileError(path, f"the {label_property!r} vertex property holds non-integer values")
    return ply.vertices(path), ply.faces, ids.astype(np.int64)


def prepare_scene(config: SceneNNConfig, directory: Path, split: str, index: int, scene: str,
                  mesh_file: str) -> dict[str, FileRecord]:
    """Worker job: read, label, normalise and sample one scene, and write its files."""
    _, mapping = config.vocabulary()
    vertices, faces, ids = read_scene(Path(mesh_file), config.label_property)
    normalised, loc, scale = normalise(vertices, mesh_file)
    face_labels = face_majority(map_ids(ids, mapping), faces)
    mesh = (normalised.astype(np.float32), faces)
    arrays = mesh_scene(mesh[0], faces, face_labels, config, scene_rng(config.seed, scene))
    arrays.update(loc=loc, scale=np.float64(scale))
    return write_scene(directory, split, index, arrays, mesh)


def build(config: SceneNNConfig, cache_dir: str | Path) -> SceneDataset:
    """Validate ``config``, find the scenes and their split, fingerprint them, and prepare or verify their samples
    under ``cache_dir``."""
    config = plain_copy(config, SceneNNConfig)
    config.validate()
    root = require_root(NAME, config.root, LAYOUT)
    scenes = find_scenes(root)
    parts, source, lists = assign_splits(NAME, LAYOUT, root, scenes, config, LISTS, "lists")
    entries: dict[str, list[Entry]] = {split: [(scene, (scenes[scene],)) for scene in parts.get(split, [])]
                                       for split in SPLITS}
    classes, mapping = config.vocabulary()
    used = [Path(files[0]) for items in entries.values() for _, files in items]
    payload = {"dataset": NAME, "loader_version": LOADER_VERSION, "label_property": config.label_property,
               "classes": list(classes), "label_map": sorted(mapping.items()), "split": source,
               "splits": {split: [scene for scene, _ in items] for split, items in entries.items()},
               "files": file_stats(root, used + lists)}
    return open_scenes(NAME, config, classes, entries, payload, True, prepare_scene, cache_dir)
