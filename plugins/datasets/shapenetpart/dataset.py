"""The ``shapenetpart`` dataset: ShapeNetPart's point clouds with global part labels (the normal-augmented
benchmark, ``x y z nx ny nz part`` per line), for the conventional per-point segmentation task or, with
ShapeNetCore.v2 meshes (``mesh_root``; required by ``shapenetpart_implicit``), the implicit formulation of
"Towards Generalising Neural Implicit Representations".

Splits follow the official ``train_test_split/shuffled_{train,val,test}_file_list.json``; without them,
each category's shapes are split by a seeded hash of their ids (``split_fractions``) and the fingerprint
says so. The fingerprint also hashes the loader version, the categories, the split assignment and every
file used (relative path, size, mtime).

Items: ``points`` [N,3] (N = ``input_points``, drawn without replacement where the shape has enough points,
with replacement otherwise; normalised into the unit sphere, as PointNet++), ``query`` (the same points:
the task labels its input), ``part`` (global part ids), ``normals``, ``label`` (category index) and
``index``. Training items draw afresh; val/test items are fixed. A part label outside its category's range
is an error naming the file and line.

Implicit task: each cloud is box-normalised as ONet's data (bounding-box centre at the origin, longest side
1), its v2 mesh fitted into that frame (:func:`~harness.datacache.fit_checked`: a quarter turn into v1's
axes, then bounding boxes matched; a mesh far from the cloud is an error), occupancy points drawn as ONet
draws its own and labelled by the winding number of the cleaned mesh, and each inside point given the part
of the nearest point of the cloud (a Voronoi partition of the interior; outside points get -1). Shapes
without a mesh are left out (``skip_missing_meshes``, counted in the fingerprint) or an error. Samples and
the fitted mesh (``mesh_path``) are cached under ``<cache_dir>/<name>/<fingerprint>/`` (see
:mod:`harness.datacache`), the fingerprint also hashing the sampling fields and every mesh file. Items are
ONet's (:class:`~harness.datacache.SampledSplit`): noisy ``points`` from the cloud with their
``points_part``, ``query``/``occupancy``/``part``, ``iou_query``/``iou_occupancy`` in val/test,
``surface``/``normals``/``surface_part`` (the cloud), ``label``, ``index``.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from harness import data as keys
from harness.data import SPLITS, DatasetInfo, check_split
from harness.datacache import (CachedSplit, DataFileError, FileRecord, ItemSizes, SeededSplit, VerifiedCache,
                               check_disjoint_splits, check_index, clean_mesh, ensure_cache, file_stats, fingerprint,
                               fit_checked, numbered_lines, plain_copy, read_mesh, read_table, require_root,
                               shape_files, shape_rng, split_by_fractions, unit_sphere, write_fitted_shape)

from .config import (BENCHMARK, CATEGORIES, LAYOUT, LOADER_VERSION, MESH_LAYOUT, SYNSETS, ShapeNetPartConfig,
                     ShapeNetPartImplicitConfig, part_vocabulary)

NAME = "shapenetpart"
LIST_FILE = "train_test_split/shuffled_{split}_file_list.json"
LIST_FILES = {split: LIST_FILE.format(split=split) for split in SPLITS}

Entry = tuple[Path, int]  # a shape's file and its category index
PartRange = tuple[int, int]  # a category's lowest and highest global part id
# what the implicit samples are made of (part of the fingerprint: change it when the derivation changes)
DERIVATION = ("cloud box-normalised; ShapeNetCore.v2 mesh fitted to it (quarter turn, bounding boxes); ONet "
              "queries labelled by the winding number of the cleaned mesh; inside queries take the part of the "
              "nearest cloud point, outside -1")


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
        check_disjoint_splits(NAME, {split: [f"{path.parent.name}/{path.stem}" for path, _ in items]
                                     for split, items in entries.items()}, config.strict_splits,
                              str(data / LIST_FILE.format(split="{train,val,test}")))
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


def part_ranges(categories: list[str]) -> list[PartRange]:
    """Each category's (lowest, highest) global part id, by category index."""
    _, per_category = part_vocabulary()
    return [(min(per_category[c]), max(per_category[c])) for c in categories]


def read_cloud(path: Path, part_range: PartRange) -> tuple[np.ndarray, np.ndarray]:
    """[N,6] points and normals and [N] int64 parts of a benchmark file; a non-integer part or one outside
    the category's range names its line."""
    table = read_table(path, 7)
    column = table[:, 6]
    low, high = part_range
    bad = np.flatnonzero((column != np.round(column)) | (column < low) | (column > high))
    if len(bad):
        number, text = numbered_lines(path)[bad[0]]
        raise DataFileError(path, f"part label {text.split()[6]} is not one of this category's part ids "
                                  f"{low}..{high}", number)
    return table[:, :6], column.astype(np.int64)


def mesh_file(mesh_root: Path, cloud: Path) -> Path:
    """The ShapeNetCore.v2 mesh of a benchmark file ``<synset>/<id>.txt``."""
    return mesh_root / cloud.parent.name / cloud.stem / "models" / "model_normalized.obj"


def derive_shape(config: ShapeNetPartConfig, directory: Path, split: str, index: int, cloud: str, obj: str,
                 part_range: PartRange, label: int) -> dict[str, FileRecord]:
    """Worker job: fit the mesh to the box-normalised cloud, draw and label occupancy points, give inside
    points the part of their nearest cloud point, and write the samples and the fitted mesh."""
    from pykdtree.kdtree import KDTree  # heavy (igl, trimesh): only deriving processes import them

    from harness.geometry.inside import contains
    from harness.geometry.mesh import normalize_mesh

    cloud_path, obj_path = Path(cloud), Path(obj)
    table, parts = read_cloud(cloud_path, part_range)
    try:
        points, _, _ = normalize_mesh(table[:, :3])
    except ValueError as exc:  # all points in one place
        raise DataFileError(cloud_path, str(exc)) from exc
    vertices, faces = read_mesh(obj_path)
    frame, fitted, residual = fit_checked(obj_path, vertices, faces, cloud_path, points)
    key = f"{cloud_path.parent.name}/{cloud_path.stem}"
    occ_points = config.occupancy_points(fitted, faces, shape_rng(config.seed, key))
    exact = occ_points.astype(np.float64)  # labelled as stored
    occupancy = contains(*clean_mesh(fitted, faces), exact)
    nearest = KDTree(points).query(exact, k=1)[1]
    arrays = {
        "surface": points.astype(np.float32),
        "normals": table[:, 3:6].astype(np.float32),
        "surface_part": parts.astype(np.int16),
        "occ_points": occ_points,
        "occupancy": occupancy,
        "occ_part": np.where(occupancy, parts[nearest], keys.IGNORE_INDEX).astype(np.int16),
        "n_uniform": np.int64(config.n_uniform),  # the first n_uniform occ_points are uniform in the box
        "label": np.int64(label),
    }
    return write_fitted_shape(directory, *shape_files(split, index), arrays, frame, residual, fitted, faces)


class PartSplit(SeededSplit):
    """One split of ShapeNetPart; each item parses one text file."""

    def __init__(self, split: str, entries: list[Entry], config: ShapeNetPartConfig, categories: list[str]) -> None:
        super().__init__(NAME, split, len(entries), config.seed)
        self.entries = entries
        self.config = config
        self.part_ranges = part_ranges(categories)

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        path, label = self.entries[index]
        table, parts = read_cloud(path, self.part_ranges[label])
        count = self.config.input_points
        pick = rng.choice(len(table), count, replace=len(table) < count)
        points = table[pick, :3]
        points = (unit_sphere(points, path) if self.config.normalize else points).astype(np.float32)
        # the conventional task: the input points are the queries, so both label keys hold their parts
        return {keys.POINTS: points, keys.QUERY: points.copy(), keys.PART: parts[pick], keys.POINTS_PART: parts[pick],
                keys.NORMALS: table[pick, 3:6].astype(np.float32), keys.LABEL: np.int64(label)}


class ImplicitSplit(CachedSplit):
    """One split of the implicit task, over the cached samples; a cloud too small for the item sizes is an
    error naming its file."""

    def __init__(self, name: str, split: str, entries: list[Entry], config: ShapeNetPartConfig,
                 cache: VerifiedCache) -> None:
        super().__init__(name, split, len(entries), config.seed, ItemSizes.of(config), cache)
        self.entries = entries

    def shape(self, index: int) -> dict[str, np.ndarray]:
        stored = super().shape(index)
        for field in ("input_points", "eval_surface_points"):
            if getattr(self.sizes, field) > len(stored["surface"]):
                raise DataFileError(self.entries[index][0], f"has {len(stored['surface'])} points, fewer than "
                                                            f"{field} = {getattr(self.sizes, field)}")
        return stored


class ShapeNetPart:
    """A built ShapeNetPart dataset; ``cache`` (and its ``directory``) holds the implicit task's samples (None:
    per-point task)."""

    def __init__(self, name: str, config: ShapeNetPartConfig, categories: list[str], entries: dict[str, list[Entry]],
                 identity: str, cache: VerifiedCache | None) -> None:
        self.config = config
        self.categories = categories
        self.entries = entries
        self.cache = cache
        self.directory = cache.directory if cache else None
        parts, per_category = part_vocabulary()
        targets = ("occupancy", "part", "label") if cache else ("part", "label")
        self.info = DatasetInfo(name=name, modalities=("points",), targets=targets, classes=tuple(categories),
                                parts=parts, parts_per_class={c: per_category[c] for c in categories},
                                splits=SPLITS, fingerprint=identity)

    def split(self, name: str) -> PartSplit | ImplicitSplit:
        check_split(self.info, name)
        if self.cache:
            return ImplicitSplit(self.info.name, name, self.entries[name], self.config, self.cache)
        return PartSplit(name, self.entries[name], self.config, self.categories)

    def mesh_path(self, split: str, index: int) -> Path | None:
        """The fitted ShapeNetCore.v2 mesh in the implicit task (None for point clouds only)."""
        check_index(self.info, self.entries, split, index)
        return self.directory / shape_files(split, index)[1] if self.directory else None


def with_meshes(name: str, mesh_root: Path, entries: dict[str, list[Entry]], skip: bool
                ) -> tuple[dict[str, list[Entry]], int]:
    """The entries that have a mesh, and how many were left out (``skip``; otherwise a missing one is an error)."""
    kept: dict[str, list[Entry]] = {split: [] for split in entries}
    missing: list[Path] = []
    for split, items in entries.items():
        for path, label in items:
            if mesh_file(mesh_root, path).is_file():
                kept[split].append((path, label))
            else:
                missing.append(path)
    if missing and not skip:
        raise FileNotFoundError(f"{name}: {mesh_file(mesh_root, missing[0])} is missing ({len(missing)} shapes have "
                                f"no mesh in dataset.mesh_root, expected layout: {MESH_LAYOUT}); set "
                                f"dataset.skip_missing_meshes=true to leave them out")
    if not any(kept.values()):
        raise FileNotFoundError(f"{name}: no shape has a mesh in dataset.mesh_root={str(mesh_root)!r}; expected "
                                f"layout: {MESH_LAYOUT}")
    return kept, len(missing)


def build(config: ShapeNetPartConfig, cache_dir: str | Path) -> ShapeNetPart:
    """``shapenetpart``: the per-point task, or the implicit one where ``mesh_root`` is set."""
    return build_as(NAME, plain_copy(config, ShapeNetPartConfig), cache_dir)


def build_implicit(config: ShapeNetPartImplicitConfig, cache_dir: str | Path) -> ShapeNetPart:
    """``shapenetpart_implicit``: the implicit task (``mesh_root`` required)."""
    return build_as(f"{NAME}_implicit", plain_copy(config, ShapeNetPartImplicitConfig), cache_dir)


def build_as(name: str, config: ShapeNetPartConfig, cache_dir: str | Path) -> ShapeNetPart:
    """Validate ``config``, find the shapes and their split, and fingerprint them; in the implicit task,
    derive or verify their samples under ``cache_dir``."""
    config.validate()
    data = data_folder(require_root(NAME, config.root, LAYOUT))
    categories = list(config.categories) or list(CATEGORIES)
    entries, source = discover(data, categories, config)
    used = [path for items in entries.values() for path, _ in items]
    lists = [data / listing for listing in LIST_FILES.values()] if source == "official" else []
    split = {"source": source}  # the fallback split says so, and what made it
    if source == "fallback":
        split.update(fractions=config.split_fractions, seed=config.seed)
    mesh_root = Path(config.mesh_root).expanduser() if config.mesh_root else None
    implicit: dict[str, Any] = {}
    if mesh_root is not None:
        if not mesh_root.is_dir():
            raise FileNotFoundError(f"{name}: dataset.mesh_root={config.mesh_root!r} is not a folder; expected "
                                    f"layout: {MESH_LAYOUT}")
        entries, skipped = with_meshes(name, mesh_root, entries, config.skip_missing_meshes)
        meshes = [mesh_file(mesh_root, path) for items in entries.values() for path, _ in items]
        implicit = {**config.generation_params(), "derivation": DERIVATION, "skipped_missing_meshes": skipped,
                    "mesh_files": file_stats(mesh_root, meshes)}
    payload = {"dataset": NAME, "loader_version": LOADER_VERSION, "categories": categories, "split": split,
               "splits": {split: [path.relative_to(data).as_posix() for path, _ in items]
                          for split, items in entries.items()},
               "files": file_stats(data, used + lists)}
    if implicit:  # absent from the per-point task's payload, whose fingerprints stay as they were
        payload["implicit"] = implicit
    identity = fingerprint(payload)
    if mesh_root is None:
        return ShapeNetPart(name, config, categories, entries, identity, None)
    directory = Path(cache_dir) / name / identity
    ranges = part_ranges(categories)
    jobs = [(split, index, str(path), str(mesh_file(mesh_root, path)), ranges[label], label)
            for split, items in entries.items() for index, (path, label) in enumerate(items)]
    header = {"dataset": name, "fingerprint": identity, "config": config.generation_params()}
    cache = ensure_cache(directory, header, jobs, lambda job: shape_files(job[0], job[1]),
                         functools.partial(derive_shape, config, directory), workers=config.workers,
                         checksum_all=config.checksum_all, desc=f"deriving {name} occupancy and parts")
    return ShapeNetPart(name, config, categories, entries, identity, cache)
