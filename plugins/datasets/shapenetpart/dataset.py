"""The ``shapenetpart`` dataset: ShapeNetPart's point clouds with global part labels (the normal-augmented
benchmark, ``x y z nx ny nz part`` per line), for the conventional per-point segmentation task.

Splits follow the official ``train_test_split/shuffled_{train,val,test}_file_list.json``; without them,
each category's shapes are split by a seeded hash of their ids (``split_fractions``) and the fingerprint
says so. The fingerprint also hashes the loader version, the categories, the split assignment and every
file used (relative path, size, mtime).

Items: ``points`` [N,3] (N = ``input_points``, drawn without replacement where the shape has enough points,
with replacement otherwise; normalised into the unit sphere, as PointNet++), ``query`` (the same points:
the task labels its input), ``part`` (global part ids), ``normals``, ``label`` (category index) and
``index``. Training items draw afresh; val/test items are fixed. A part label outside its category's range
is an error naming the file and line.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from harness import data as keys
from harness.data import SPLITS, DatasetInfo, check_split
from harness.datacache import (DataFileError, SeededSplit, check_index, file_stats, fingerprint, numbered_lines,
                               plain_copy, read_table, require_root, split_by_fractions, unit_sphere)

from .config import BENCHMARK, CATEGORIES, LAYOUT, LOADER_VERSION, SYNSETS, ShapeNetPartConfig, part_vocabulary

NAME = "shapenetpart"
LIST_FILES = {split: f"train_test_split/shuffled_{split}_file_list.json" for split in SPLITS}

Entry = tuple[Path, int]  # a shape's file and its category index


def data_folder(root: Path) -> Path:
    """The benchmark folder: ``root`` itself or its BENCHMARK subfolder."""
    return root / BENCHMARK if (root / BENCHMARK).is_dir() else root


def read_split_list(path: Path) -> list[tuple[str, str]]:
    """(synset, id) of each ``shape_data/<synset>/<id>`` entry of an official split list."""
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataFileError(path, f"not JSON: {exc.msg}", exc.lineno) from exc
    if not isinstance(entries, list):
        raise DataFileError(path, "expected a JSON list of 'shape_data/<synset>/<id>' strings")
    shapes = []
    for position, entry in enumerate(entries):
        parts = entry.split("/") if isinstance(entry, str) else []
        if len(parts) != 3 or parts[0] != "shape_data":
            raise DataFileError(path, f"entry {position} is {entry!r}, not 'shape_data/<synset>/<id>'")
        if parts[1] not in SYNSETS:
            raise DataFileError(path, f"entry {position} ({entry}) has unknown synset {parts[1]}; the 16 categories "
                                      f"are {sorted(SYNSETS)}")
        shapes.append((parts[1], parts[2]))
    return shapes


def discover(data: Path, categories: list[str], config: ShapeNetPartConfig) -> tuple[dict[str, list[Entry]], str]:
    """Each split's entries, and where the split came from ("official" lists or "fallback" fractions)."""
    wanted = {CATEGORIES[c][0]: label for label, c in enumerate(categories)}
    lists = {split: data / name for split, name in LIST_FILES.items()}
    if all(path.is_file() for path in lists.values()):
        entries = {split: [(data / synset / f"{shape}.txt", wanted[synset])
                           for synset, shape in read_split_list(path) if synset in wanted]
                   for split, path in lists.items()}
        missing = [path for items in entries.values() for path, _ in items if not path.is_file()]
        if missing:
            raise FileNotFoundError(f"{NAME}: {len(missing)} shapes of the split lists have no file, e.g. {missing[0]}")
        return {split: sorted(items, key=lambda e: (e[1], e[0].name)) for split, items in entries.items()}, "official"
    synset_folders = [d for d in data.iterdir() if d.is_dir() and d.name.isdigit()]
    for folder in synset_folders:
        if folder.name not in SYNSETS:
            raise DataFileError(folder, f"unknown synset {folder.name}; the 16 categories are {sorted(SYNSETS)}")
    if not synset_folders:
        raise FileNotFoundError(f"{NAME}: no category folders in {data}; expected layout: {LAYOUT}")
    entries: dict[str, list[Entry]] = {split: [] for split in SPLITS}
    for synset, label in wanted.items():
        files = {path.stem: path for path in (data / synset).glob("*.txt")}
        for split, ids in split_by_fractions(list(files), config.split_fractions, config.seed).items():
            entries[split] += [(files[i], label) for i in ids]
    return entries, "fallback"


class PartSplit(SeededSplit):
    """One split of ShapeNetPart; each item parses one text file."""

    def __init__(self, split: str, entries: list[Entry], config: ShapeNetPartConfig, categories: list[str]) -> None:
        super().__init__(NAME, split, len(entries), config.seed)
        self.entries = entries
        self.config = config
        _, per_category = part_vocabulary()
        self.part_ranges = [(min(per_category[c]), max(per_category[c])) for c in categories]

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        path, label = self.entries[index]
        table = read_table(path, 7)
        parts = self._parts(path, table[:, 6], label)
        count = self.config.input_points
        pick = rng.choice(len(table), count, replace=len(table) < count)
        points = table[pick, :3]
        points = (unit_sphere(points, path) if self.config.normalize else points).astype(np.float32)
        # the conventional task: the input points are the queries, so both label keys hold their parts
        return {keys.POINTS: points, keys.QUERY: points.copy(), keys.PART: parts[pick], keys.POINTS_PART: parts[pick],
                keys.NORMALS: table[pick, 3:6].astype(np.float32), keys.LABEL: np.int64(label)}

    def _parts(self, path: Path, column: np.ndarray, label: int) -> np.ndarray:
        """The part column as int64; a non-integer or a label outside the category's range names its line."""
        low, high = self.part_ranges[label]
        bad = np.flatnonzero((column != np.round(column)) | (column < low) | (column > high))
        if len(bad):
            number, text = numbered_lines(path)[bad[0]]
            raise DataFileError(path, f"part label {text.split()[6]} is not one of this category's part ids "
                                      f"{low}..{high}", number)
        return column.astype(np.int64)


class ShapeNetPart:
    """A built ShapeNetPart dataset."""

    def __init__(self, config: ShapeNetPartConfig, categories: list[str], entries: dict[str, list[Entry]],
                 payload: dict[str, Any]) -> None:
        self.config = config
        self.categories = categories
        self.entries = entries
        parts, per_category = part_vocabulary()
        self.info = DatasetInfo(name=NAME, modalities=("points",), targets=("part", "label"),
                                classes=tuple(categories), parts=parts,
                                parts_per_class={c: per_category[c] for c in categories}, splits=SPLITS,
                                fingerprint=fingerprint(payload))

    def split(self, name: str) -> PartSplit:
        check_split(self.info, name)
        return PartSplit(name, self.entries[name], self.config, self.categories)

    def mesh_path(self, split: str, index: int) -> None:
        """Point clouds only: no mesh."""
        check_index(self.info, self.entries, split, index)


def build(config: ShapeNetPartConfig, cache_dir: str | Path) -> ShapeNetPart:
    """Validate ``config``, find the shapes and their split, and fingerprint them (nothing is cached)."""
    config = plain_copy(config, ShapeNetPartConfig)
    config.validate()
    data = data_folder(require_root(NAME, config.root, LAYOUT))
    categories = list(config.categories) or list(CATEGORIES)
    entries, source = discover(data, categories, config)
    used = [path for items in entries.values() for path, _ in items]
    lists = [data / name for name in LIST_FILES.values()] if source == "official" else []
    split = {"source": source}  # the fallback split says so, and what made it
    if source == "fallback":
        split.update(fractions=config.split_fractions, seed=config.seed)
    payload = {"dataset": NAME, "loader_version": LOADER_VERSION, "categories": categories, "split": split,
               "splits": {split: [path.relative_to(data).as_posix() for path, _ in items]
                          for split, items in entries.items()},
               "files": file_stats(data, used + lists)}
    return ShapeNetPart(config, categories, entries, payload)
