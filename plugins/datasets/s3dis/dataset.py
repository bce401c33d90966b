"""The ``s3dis`` dataset: S3DIS rooms (the point clouds of 2D-3D-S) with their 13 classes, prepared as the
contextualising paper prepares them (NDF's recipe, :mod:`harness_plugins.datasets.scenes`).

Layout: ``<root>/Area_<k>/<room>/<room>.txt`` and ``<root>/Area_<k>/<room>/Annotations/<class>_<i>.txt``, each a
text file of ``x y z r g b`` per line. A room's labelled points are its annotation files together (as the
usual S3DIS tooling collects them; ``<room>.txt`` holds the same points unlabelled, so it is checked to exist
and fingerprinted, not read); an object's class is its file name's prefix (``chair_3`` -> chair). A prefix
outside the 13 classes (Area_5's ``stairs``) counts as ``clutter`` (PointNet's ``indoor3d_util``) or, with
``unknown_class=ignore``, as -1. Colours are not used. A malformed line is an error naming the file and line.

Only points exist, so they are the dense surface sample: distances are to the nearest point and labels that
point's (the fingerprint payload and ``dataset.distances_to`` say ``"points"``; ``mesh_path`` is None).

Splits by area: ``train_areas`` (1-4), ``test_areas`` (6), and ``val_areas`` or, if none are given,
``val_fraction`` of the training rooms (seeded by room id).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data import IGNORE_INDEX
from harness.datacache import DataFileError, FileRecord, file_stats, plain_copy, require_root

from ..scenes import (Entry, SceneDataset, carve_val, normalise, open_scenes, point_scene, read_xyz_table, scene_rng,
                      write_scene)
from .config import CLASSES, LAYOUT, LOADER_VERSION, S3DISConfig

NAME = "s3dis"


def object_class(path: Path, unknown: str) -> int:
    """The label of an annotation file ``<class>_<i>.txt`` (unknown classes: clutter or -1)."""
    stem = path.stem
    prefix, _, number = stem.rpartition("_")
    name = prefix if prefix and number.isdigit() else stem
    if name in CLASSES:
        return CLASSES.index(name)
    return CLASSES.index("clutter") if unknown == "clutter" else IGNORE_INDEX


def find_rooms(root: Path, area: int) -> list[Entry]:
    """The rooms of one area: (``Area_<k>/<room>``, (room file, annotation files...))."""
    folder = root / f"Area_{area}"
    if not folder.is_dir():
        raise FileNotFoundError(f"{NAME}: {folder} is missing (configured in the splits); expected layout: {LAYOUT}")
    rooms = []
    for room in sorted(p for p in folder.iterdir() if p.is_dir()):
        whole = room / f"{room.name}.txt"
        if not whole.is_file():
            raise FileNotFoundError(f"{NAME}: {whole} is missing; expected layout: {LAYOUT}")
        annotations = sorted((room / "Annotations").glob("*.txt"))
        if not annotations:
            raise DataFileError(room, "no Annotations/<class>_<i>.txt files")
        rooms.append((f"{folder.name}/{room.name}", tuple(str(p) for p in (whole, *annotations))))
    if not rooms:
        raise FileNotFoundError(f"{NAME}: no rooms in {folder}; expected layout: {LAYOUT}")
    return rooms


def read_room(annotations: list[Path], unknown: str) -> tuple[np.ndarray, np.ndarray]:
    """[N,3] points and [N] labels of a room's annotation files."""
    points, labels = [], []
    for path in annotations:
        table = read_xyz_table(path, 6)
        points.append(table[:, :3])
        labels.append(np.full(len(table), object_class(path, unknown), dtype=np.int64))
    return np.concatenate(points), np.concatenate(labels)


def prepare_scene(config: S3DISConfig, directory: Path, split: str, index: int, room: str, whole: str,
                  *annotations: str) -> dict[str, FileRecord]:
    """Worker job: read, normalise and sample one room, and write its file."""
    points, labels = read_room([Path(p) for p in annotations], config.unknown_class)
    normalised, loc, scale = normalise(points, whole)
    arrays = point_scene(normalised, labels, config, scene_rng(config.seed, room))
    arrays.update(loc=loc, scale=np.float64(scale))
    return write_scene(directory, split, index, arrays, None)


def build(config: S3DISConfig, cache_dir: str | Path) -> SceneDataset:
    """Validate ``config``, find the rooms of the configured areas, fingerprint them, and prepare or verify their
    samples under ``cache_dir``."""
    config = plain_copy(config, S3DISConfig)
    config.validate()
    root = require_root(NAME, config.root, LAYOUT)
    rooms = {area: find_rooms(root, area)
             for area in (*config.train_areas, *config.val_areas, *config.test_areas)}
    train = [room for area in config.train_areas for room in rooms[area]]
    val = [room for area in config.val_areas for room in rooms[area]]
    if not config.val_areas:
        by_id = dict(train)
        kept, carved = carve_val(list(by_id), config.val_fraction, config.seed)
        train, val = [(r, by_id[r]) for r in kept], [(r, by_id[r]) for r in carved]
    entries = {"train": train, "val": val, "test": [room for area in config.test_areas for room in rooms[area]]}
    used = [Path(f) for items in entries.values() for _, files in items for f in files]
    payload = {"dataset": NAME, "loader_version": LOADER_VERSION, "unknown_class": config.unknown_class,
               "split": {"train_areas": config.train_areas, "val_areas": config.val_areas,
                         "test_areas": config.test_areas, "val_fraction": config.val_fraction},
               "splits": {split: [room for room, _ in items] for split, items in entries.items()},
               "files": file_stats(root, used)}
    return open_scenes(NAME, config, CLASSES, entries, payload, False, prepare_scene, cache_dir)
