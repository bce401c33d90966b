"""The two ModelNet40 loaders: meshes (``modelnet40``) and PointNet++'s resampled point clouds
(``modelnet40_resampled``). Both take their classes from the data (or ``classes``), carve validation from
each class's training shapes by a seeded hash of the file name, and fingerprint the loader version, the
fields that change what is loaded and every file used (relative path, size, mtime).

``modelnet40``: each OFF mesh is cleaned (:func:`~harness.datacache.clean_mesh`: merged vertices, no
duplicate back faces, consistent winding, no unreferenced vertices), normalised as Occupancy Networks does
(bounding-box centre at the origin, longest side 1) and sampled once into
``<cache_dir>/modelnet40/<fingerprint>/`` (see :mod:`harness.datacache`): surface points with normals,
occupancy points uniform in the box of side ``1 + padding`` (plus optional near-surface ones) labelled by
the winding number (generalised where the mesh has holes, as many ModelNet meshes do: it stays right away
from the surface), and the cleaned normalised mesh (``mesh_path``). Points are stored as float16, as ONet
stores its own (about 1.9 MB per shape at the default sizes), and labelled after rounding. Items are ONet's
(:class:`~harness.datacache.SampledSplit`).

``modelnet40_resampled``: items are ``points`` (the first or a random ``input_points`` of the file,
normalised into the unit sphere, with optional Gaussian ``jitter``), their ``normals``, ``label``, ``index``.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from harness import data as keys
from harness.data import DatasetInfo, check_split
from harness.datacache import (CachedSplit, DataFileError, FileRecord, ItemSizes, SeededSplit, VerifiedCache,
                               check_disjoint_splits, check_index, clean_mesh, ensure_cache, file_stats, fingerprint,
                               npz_bytes, numbered_lines, plain_copy, ply_bytes, read_table, require_root,
                               shape_files, shape_rng, split_by_fractions, unit_sphere, write_atomic)

from .config import (LOADER_VERSION, MESH_LAYOUT, RESAMPLED_LAYOUT, ModelNet40Config, ModelNet40ResampledConfig,
                     ModelNetFields)
from .off import read_off

MESHES, RESAMPLED = "modelnet40", "modelnet40_resampled"

Entry = tuple[Path, int]  # a shape's source file and its label


def choose_classes(dataset: str, available: list[str], config: ModelNetFields, where: str) -> list[str]:
    """The configured classes (in their order) or all available ones; unknown names are an error."""
    if not available:
        raise FileNotFoundError(f"{dataset}: no classes found in {where}")
    unknown = [c for c in config.classes if c not in available]
    if unknown:
        raise ValueError(f"{dataset}: unknown classes {unknown}; {where} has {available}")
    return list(config.classes) or available


def carve_validation(train: list[Entry], config: ModelNetFields) -> dict[str, list[Entry]]:
    """Each class's training shapes split into train and val by a seeded hash of their file names."""
    parts: dict[str, list[Entry]] = {"train": [], "val": []}
    fractions = {"train": 1 - config.val_fraction, "val": config.val_fraction}
    for label in sorted({label for _, label in train}):
        by_name = {path.name: (path, own) for path, own in train if own == label}
        for split, names in split_by_fractions(list(by_name), fractions, config.seed).items():
            parts[split] += [by_name[name] for name in names]
    return parts


def describe(name: str, root: Path, params: dict[str, Any], entries: dict[str, list[Entry]],
             extra_files: list[Path]) -> dict[str, Any]:
    """What the fingerprint hashes: loader version, the fields that change what is loaded, the split
    assignment and every file used (relative path, size, mtime)."""
    used = [path for items in entries.values() for path, _ in items]
    return {"dataset": name, "loader_version": LOADER_VERSION, "config": params,
            "splits": {split: [path.relative_to(root).as_posix() for path, _ in items]
                       for split, items in entries.items()},
            "files": file_stats(root, used + extra_files)}


class ModelNetDataset:
    """A built ModelNet40 dataset: its info and each split's (source file, label) entries."""

    def __init__(self, info: DatasetInfo, entries: dict[str, list[Entry]]) -> None:
        self.info = info
        self.entries = entries

    def _check(self, split: str, index: int) -> None:
        check_index(self.info, self.entries, split, index)


# ----- meshes ----------------------------------------------------------------------------------------------


def discover_meshes(root: Path, config: ModelNet40Config) -> tuple[list[str], dict[str, list[Entry]]]:
    available = sorted(d.name for d in root.iterdir()
                       if d.is_dir() and any((d / split).is_dir() for split in ("train", "test")))
    classes = choose_classes(MESHES, available, config, f"{root} (expected layout: {MESH_LAYOUT})")
    found: dict[str, list[Entry]] = {"train": [], "test": []}
    for label, name in enumerate(classes):
        for split, items in found.items():
            items += [(path, label) for path in sorted((root / name / split).glob("*.off"))]
    return classes, {**carve_validation(found["train"], config), "test": found["test"]}


def derive_shape(config: ModelNet40Config, directory: Path, split: str, index: int, source: str, key: str,
                 label: int) -> dict[str, FileRecord]:
    """Worker job: normalise one mesh, sample it and write its cache files (``key`` seeds the samples)."""
    from harness.geometry.inside import contains  # heavy (igl, trimesh): only deriving processes import it
    from harness.geometry.mesh import normalize_mesh, sample_surface

    path = Path(source)
    vertices, faces = read_off(path)
    rng = shape_rng(config.seed, key)
    try:
        vertices, faces = clean_mesh(vertices, faces)  # first: unreferenced vertices must not set the scale
        normalized, loc, scale = normalize_mesh(vertices)
        surface, normals, _ = sample_surface(normalized, faces, config.n_surface, rng)
        occ_points = config.occupancy_points(normalized, faces, rng)
    except ValueError as exc:  # a degenerate mesh: all vertices in one point, or no area
        raise DataFileError(path, str(exc)) from exc
    arrays = {
        "vertices": normalized.astype(np.float32),
        "faces": faces.astype(np.int32),
        "surface": surface.astype(np.float16),
        "normals": normals.astype(np.float16),
        "occ_points": occ_points,
        "occupancy": contains(normalized, faces, occ_points.astype(np.float64)),
        "n_uniform": np.int64(config.n_uniform),  # the first n_uniform occ_points are uniform in the box
        "label": np.int64(label),
        "loc": np.asarray(loc, dtype=np.float64),  # source frame = vertices * scale + loc
        "scale": np.float64(scale),
    }
    npz, ply = shape_files(split, index)
    return {npz: write_atomic(directory / npz, npz_bytes(arrays)),
            ply: write_atomic(directory / ply, ply_bytes(arrays["vertices"], faces))}


class ModelNet40(ModelNetDataset):
    """ModelNet40 meshes with derived occupancy samples."""

    def __init__(self, config: ModelNet40Config, info: DatasetInfo, entries: dict[str, list[Entry]],
                 cache: VerifiedCache) -> None:
        super().__init__(info, entries)
        self.config = config
        self.cache = cache
        self.directory = cache.directory

    def split(self, name: str) -> CachedSplit:
        check_split(self.info, name)
        return CachedSplit(MESHES, name, len(self.entries[name]), self.config.seed, ItemSizes.of(self.config),
                           self.cache)

    def mesh_path(self, split: str, index: int) -> Path:
        """The normalised mesh (the frame of every sample)."""
        self._check(split, index)
        return self.directory / shape_files(split, index)[1]


def build_meshes(config: ModelNet40Config, cache_dir: str | Path) -> ModelNet40:
    """Validate ``config``, find the meshes, derive or verify their samples under ``cache_dir``, and open them."""
    config = plain_copy(config, ModelNet40Config)
    config.validate()
    root = require_root(MESHES, config.root, MESH_LAYOUT)
    classes, entries = discover_meshes(root, config)
    params = {**config.generation_params(), "classes": classes, "val_fraction": config.val_fraction}
    identity = fingerprint(describe(MESHES, root, params, entries, []))
    info = DatasetInfo(name=MESHES, modalities=("points",), targets=("occupancy", "label"), classes=tuple(classes),
                       splits=tuple(entries), fingerprint=identity)
    directory = Path(cache_dir) / MESHES / identity
    jobs = [(split, index, str(path), path.relative_to(root).as_posix(), label)
            for split, items in entries.items() for index, (path, label) in enumerate(items)]
    cache = ensure_cache(directory, {"dataset": MESHES, "fingerprint": identity, "config": params}, jobs,
                         lambda job: shape_files(job[0], job[1]), functools.partial(derive_shape, config, directory),
                         workers=config.workers, checksum_all=config.checksum_all, desc=f"sampling {MESHES}")
    return ModelNet40(config, info, entries, cache)


# ----- resampled point clouds ------------------------------------------------------------------------------


def discover_resampled(root: Path, config: ModelNet40ResampledConfig
                       ) -> tuple[list[str], dict[str, list[Entry]], list[Path], int]:
    """Classes, entries, the list files and how many listed shapes were left out for want of a file."""
    names_file = root / f"{config.subset}_shape_names.txt"
    lists = {split: root / f"{config.subset}_{split}.txt" for split in ("train", "test")}
    for path in (names_file, *lists.values()):
        if not path.is_file():
            raise FileNotFoundError(f"{RESAMPLED}: {path} is missing; expected layout: {RESAMPLED_LAYOUT}")
    available = [text.strip() for _, text in numbered_lines(names_file)]
    classes = choose_classes(RESAMPLED, available, config, str(names_file))
    found: dict[str, list[Entry]] = {}
    listed: dict[str, list[str]] = {}
    missing: list[Path] = []
    for split, list_file in lists.items():
        found[split], listed[split] = [], []
        for number, text in numbered_lines(list_file):
            shape_id = text.strip()
            listed[split].append(shape_id)
            name = shape_id.rpartition("_")[0]
            if name not in available:
                raise DataFileError(list_file, f"shape id {shape_id!r}: its class {name!r} is not in "
                                               f"{names_file.name}", number)
            path = root / name / f"{shape_id}.txt"
            if name in classes:
                (found[split] if path.is_file() else missing).append((path, classes.index(name)))
    check_disjoint_splits(RESAMPLED, listed, config.strict_splits, " and ".join(str(path) for path in lists.values()))
    if missing and not config.skip_missing:
        raise FileNotFoundError(f"{RESAMPLED}: {len(missing)} listed shapes have no file, e.g. {missing[0][0]}; "
                                f"set dataset.skip_missing=true to leave them out")
    for items in found.values():
        items.sort(key=lambda entry: (entry[1], entry[0].name))
    entries = {**carve_validation(found["train"], config), "test": found["test"]}
    return classes, entries, [names_file, *lists.values()], len(missing)


class ResampledSplit(SeededSplit):
    """One split of the resampled point clouds; each item parses one text file."""

    def __init__(self, split: str, entries: list[Entry], config: ModelNet40ResampledConfig) -> None:
        super().__init__(RESAMPLED, split, len(entries), config.seed)
        self.entries = entries
        self.config = config

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        cfg = self.config
        path, label = self.entries[index]
        table = read_table(path, 6, delimiter=",")
        if len(table) < cfg.input_points:
            raise DataFileError(path, f"has {len(table)} points, fewer than input_points = {cfg.input_points}")
        pick = (np.arange(cfg.input_points) if cfg.sampling == "first"
                else rng.choice(len(table), cfg.input_points, replace=False))
        points, normals = table[pick, :3], table[pick, 3:]
        if cfg.normalize:
            points = unit_sphere(points, path)
        if cfg.jitter:
            points = points + cfg.jitter * rng.standard_normal(points.shape)
        return {keys.POINTS: points.astype(np.float32), keys.NORMALS: normals.astype(np.float32),
                keys.LABEL: np.int64(label)}


class ModelNet40Resampled(ModelNetDataset):
    """PointNet++'s resampled ModelNet40 point clouds."""

    def __init__(self, config: ModelNet40ResampledConfig, info: DatasetInfo, entries: dict[str, list[Entry]]) -> None:
        super().__init__(info, entries)
        self.config = config

    def split(self, name: str) -> ResampledSplit:
        check_split(self.info, name)
        return ResampledSplit(name, self.entries[name], self.config)

    def mesh_path(self, split: str, index: int) -> None:
        """Point clouds only: no mesh."""
        self._check(split, index)


def build_resampled(config: ModelNet40ResampledConfig, cache_dir: str | Path) -> ModelNet40Resampled:
    """Validate ``config``, read the class and split lists, and check that the listed files are there."""
    config = plain_copy(config, ModelNet40ResampledConfig)
    config.validate()
    root = require_root(RESAMPLED, config.root, RESAMPLED_LAYOUT)
    classes, entries, list_files, skipped = discover_resampled(root, config)
    params = {"subset": config.subset, "classes": classes, "val_fraction": config.val_fraction, "seed": config.seed,
              "skipped_missing": skipped}
    info = DatasetInfo(name=RESAMPLED, modalities=("points",), targets=("label",), classes=tuple(classes),
                       splits=tuple(entries),
                       fingerprint=fingerprint(describe(RESAMPLED, root, params, entries, list_files)))
    return ModelNet40Resampled(config, info, entries)
