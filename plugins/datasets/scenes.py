"""What the scene datasets share (``synthetic_rooms``, ``scannet``, ``s3dis``, ``scenenn``): the label
vocabularies, the NDF/RangeUDF preparation of one scene, its verified cache, and the items drawn from it.

Preparation (Chibane et al.'s NDF, as the contextualising paper follows it): each scene is normalised to the
unit cube (centred on its bounding box, divided by its largest extent, so the longest side spans
``[-0.5, 0.5]``), then

* ``n_input`` encoder-input points: given by the dataset (the virtual scan of ``synthetic_rooms``), uniform
  surface samples of a mesh, or a subset of a point-only scene's points;
* ``n_queries`` off-surface query points: surface samples plus isotropic Gaussian noise, one group per
  ``query_sigmas`` entry in the proportions ``query_fractions`` (stored in group order, with ``query_group``),
  each with its exact unsigned distance ``udf`` and the ``semantic`` label of the nearest face (the AABB tree
  of :class:`harness.geometry.distance.MeshDistance`) -- or, where a dataset has points only, the distance to
  and the label of the nearest point of the (dense) point sample itself;
* ``n_surface`` ground-truth surface points with their labels, for evaluation.

The counts are fixed, so items batch: a point-only scene with fewer points than asked for is sampled with
replacement (e.g. a ScanNet scene of 80k vertices for 100k surface points repeats some).

Cache layout: ``<cache_dir>/<dataset>/<fingerprint>/<split>/<index>.npz`` (every array of one scene: ``points``,
``points_semantic``, ``query``, ``query_group``, ``udf``, ``semantic``, ``surface``, ``surface_semantic``, ``loc``
and ``scale`` with original = normalised * scale + loc, ``face_semantic`` for mesh scenes, and what a dataset adds)
and, for mesh scenes, ``<split>/<index>.ply`` (the normalised mesh, ``mesh_path``), verified by
:func:`harness.datacache.ensure_cache` (and an npz that fails to read is prepared again when an item reads it).
Labels are stored as int16 (-1 = ignore).

Items (:class:`SceneSplit`): ``points`` [input_points,3] and ``points_semantic``, ``query`` [query_points,3]
with ``udf`` and ``semantic``, ``surface`` [eval_surface_points,3] with ``surface_semantic``, ``index``.
Training items draw random subsets of the stored input points and queries afresh; val/test items are fixed;
the evaluation surface is a fixed subset in every split.

Heavy modules (igl, trimesh, pykdtree) are imported inside the functions that need them, so configs and specs
can import this module cheaply.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import data as keys
from harness.config_checks import is_number
from harness.data import DatasetInfo, check_split
from harness.datacache import (DataFileError, FileRecord, SeededSplit, VerifiedCache, check_disjoint_splits,
                               check_fields, check_index, ensure_cache, npz_bytes, ply_bytes, read_arrays, shape_files,
                               split_by_fractions, split_counts, write_atomic)

# ----- vocabularies ------------------------------------------------------------------------------------------

# the ScanNet benchmark's 20 classes (index = semantic label), in the order of their NYU40 ids
SCANNET20: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture",
    "counter", "desk", "curtain", "refrigerator", "shower curtain", "toilet", "sink", "bathtub", "otherfurniture",
)
# the standard NYU40 id -> ScanNet20 label mapping (ScanNet's benchmark scripts, VALID_CLASS_IDS); every other
# NYU40 id (ceiling 22, otherstructure 38, otherprop 40, unannotated 0, ...) is ignored (-1)
NYU40_IDS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 24, 28, 33, 34, 36, 39)
NYU40_TO_SCANNET20: dict[int, int] = {nyu: label for label, nyu in enumerate(NYU40_IDS)}


def map_ids(raw: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """int64 labels of raw ids through ``mapping``; ids it does not name become -1 (ignored)."""
    raw = np.asarray(raw).astype(np.int64)
    out = np.full(raw.shape, keys.IGNORE_INDEX, dtype=np.int64)
    for source, target in mapping.items():
        out[raw == source] = target
    return out


def face_majority(vertex_labels: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Each face's label from its three vertices': the label at least two of them share, else -1."""
    corners = np.asarray(vertex_labels)[np.asarray(faces)]
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    return np.where((a == b) | (a == c), a, np.where(b == c, b, keys.IGNORE_INDEX)).astype(np.int64)


# ----- configuration -----------------------------------------------------------------------------------------


@dataclass
class SceneSampling:
    """Config fields of the prepared samples (the first five change the cache) and of the items drawn from
    them; defaults are the contextualising paper's (NDF's preparation: 10k input points -- it feeds 10,240 --,
    100k off-surface queries of sigma 0.08/0.02/0.003 in proportions 0.01/0.49/0.5, 50k training queries;
    100k ground-truth surface points)."""

    n_input: int = 10_240  # stored encoder-input points per scene
    n_queries: int = 100_000  # stored off-surface query points per scene
    query_sigmas: list[float] = field(default_factory=lambda: [0.08, 0.02, 0.003])  # in unit-cube units
    query_fractions: list[float] = field(default_factory=lambda: [0.01, 0.49, 0.5])
    n_surface: int = 100_000  # stored ground-truth surface points per scene
    # what one item draws from the stored samples
    input_points: int = 10_240
    query_points: int = 50_000
    eval_surface_points: int = 100_000
    workers: int = 2  # processes preparing scenes, capped at the CPU count
    checksum_all: bool = False  # hash every cached file when opening, not only those whose size or mtime changed

    def check_sampling(self, dataset: str) -> None:
        """Raise a ValueError naming the first bad sampling field."""
        check_fields(dataset, self, counts=("n_input", "n_queries", "n_surface", "input_points", "query_points",
                                            "eval_surface_points", "workers"))
        sigmas, fractions = list(self.query_sigmas), list(self.query_fractions)
        if not sigmas or len(sigmas) != len(fractions):
            raise ValueError(f"{dataset}: query_sigmas and query_fractions must be non-empty lists of one length, "
                             f"got {sigmas} and {fractions}")
        if not all(is_number(s) and s >= 0 for s in sigmas):
            raise ValueError(f"{dataset}: query_sigmas must be numbers >= 0, got {sigmas}")
        if not all(is_number(f) and f >= 0 for f in fractions) or not sum(fractions) > 0:
            raise ValueError(f"{dataset}: query_fractions must be numbers >= 0 with a positive sum, got {fractions}")
        for name, limit, source in (("input_points", self.n_input, "n_input"),
                                    ("query_points", self.n_queries, "n_queries"),
                                    ("eval_surface_points", self.n_surface, "n_surface")):
            if getattr(self, name) > limit:
                raise ValueError(f"{dataset}: {name}={getattr(self, name)} exceeds {source} = {limit}")

    def sampling_params(self) -> dict[str, Any]:
        """The fields that change prepared samples (the rest only change how items draw from them)."""
        return {"n_input": self.n_input, "n_queries": self.n_queries, "query_sigmas": list(self.query_sigmas),
                "query_fractions": list(self.query_fractions), "n_surface": self.n_surface}

    def group_counts(self) -> list[int]:
        """Queries per noise group (largest remainders; every group with a positive fraction gets one)."""
        counts = split_counts(self.n_queries, {str(g): f for g, f in enumerate(self.query_fractions)})
        return [counts[str(g)] for g in range(len(self.query_fractions))]


# The real scene datasets' smoke and quick sizes (overrides of SceneSampling's fields; one dict shared by them)
SCENE_SAMPLING_PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {"n_input": 1024, "n_queries": 4096, "n_surface": 4096, "input_points": 512, "query_points": 1024,
              "eval_surface_points": 2048},
    # the paper's 100k ground-truth surface points even in quick: fewer lie further apart than F1's delta
    "quick": {"n_input": 4096, "n_queries": 20_000, "n_surface": 100_000, "input_points": 4096,
              "query_points": 4096, "eval_surface_points": 100_000},
}


def check_fraction(dataset: str, name: str, value: Any) -> None:
    if not is_number(value) or not 0 <= value < 1:
        raise ValueError(f"{dataset}: {name} must be a number in [0, 1), got {value!r}")


def carve_val(ids: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """``ids`` split into (train, val) with about ``fraction`` of them in val, by a seeded hash of each id
    (at least one val scene where there are two or more and the fraction is positive)."""
    if fraction <= 0 or len(ids) < 2:
        return sorted(ids), []
    parts = split_by_fractions(list(ids), {"train": 1 - fraction, "val": fraction}, seed)
    return parts["train"], parts["val"]


def assign_splits(name: str, layout: str, root: Path, scenes: Mapping[str, Any], config: Any,
                  lists: Mapping[str, str], source: str) -> tuple[dict[str, list[str]], dict, list[Path]]:
    """Each split's scene ids, what the split came from (for the fingerprint), and the list files used.

    With both list files in ``root`` (``lists``: "train" and the held-out list's split name -> file name), the
    held-out list is the test split and val is carved from the train list (a scene in both lists is a warning, or
    an error with ``config.strict_splits``); otherwise a seeded split of the scenes found, by
    ``config.split_fractions``."""
    paths = {split: root / file for split, file in lists.items()}
    if all(path.is_file() for path in paths.values()):
        listed = {split: read_id_list(path) for split, path in paths.items()}
        check_disjoint_splits(name, listed, config.strict_splits, " and ".join(str(path) for path in paths.values()))
        missing = [scene for ids in listed.values() for scene in ids if scene not in scenes]
        if missing:
            raise FileNotFoundError(f"{name}: {len(missing)} scenes of the split lists have no files in {root}, "
                                    f"e.g. {missing[0]}; expected layout: {layout}")
        train, val = carve_val(listed["train"], config.val_fraction, config.seed)
        held_out = next(split for split in lists if split != "train")
        origin = {"source": source, "val_fraction": config.val_fraction, "seed": config.seed}
        return {"train": train, "val": val, "test": sorted(listed[held_out])}, origin, list(paths.values())
    parts = split_by_fractions(list(scenes), config.split_fractions, config.seed)
    return parts, {"source": "fallback", "fractions": config.split_fractions, "seed": config.seed}, []


# ----- preparation ---------------------------------------------------------------------------------------------


def normalise(points: np.ndarray, path: str | Path) -> tuple[np.ndarray, np.ndarray, float]:
    """``(points_norm, loc, scale)`` with ``points = points_norm * scale + loc``: bounding-box centre at the
    origin, largest extent 1; a scene whose points all coincide is an error naming its file."""
    from harness.geometry.mesh import normalize_mesh

    try:
        return normalize_mesh(points)
    except ValueError as exc:
        raise DataFileError(path, str(exc)) from exc


def pick(count: int, wanted: int, rng: np.random.Generator) -> np.ndarray:
    """``wanted`` indices into ``count`` items: without replacement where there are enough, else with."""
    if count == 0:
        raise ValueError("nothing to draw from")
    return rng.choice(count, wanted, replace=count < wanted)


def noisy_queries(sampling: SceneSampling, draw: Callable[[int], np.ndarray],
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """float32 queries [n_queries,3] and their int8 noise group: ``draw(n)`` surface points plus
    N(0, sigma_g^2 I) noise, group by group in order."""
    queries, groups = [], []
    for group, (count, sigma) in enumerate(zip(sampling.group_counts(), sampling.query_sigmas)):
        base = np.asarray(draw(count), dtype=np.float64)
        queries.append(base + rng.normal(0.0, float(sigma), size=base.shape))
        groups.append(np.full(count, group, dtype=np.int8))
    return np.concatenate(queries).astype(np.float32), np.concatenate(groups)


def label_queries(vertices: np.ndarray, faces: np.ndarray, face_labels: np.ndarray,
                  queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact unsigned distances (float32) of ``queries`` to the mesh and the label of each one's nearest face
    (int64), through one AABB tree."""
    from harness.geometry.distance import MeshDistance

    distance, _, face = MeshDistance(vertices, faces).query(np.asarray(queries, dtype=np.float64))
    return distance.astype(np.float32), np.asarray(face_labels, dtype=np.int64)[face]


def label_by_points(points: np.ndarray, point_labels: np.ndarray,
                    queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances (float32) of ``queries`` to the nearest of ``points`` and that point's label (int64)."""
    from pykdtree.kdtree import KDTree

    tree = KDTree(np.ascontiguousarray(points, dtype=np.float64))
    distance, nearest = tree.query(np.ascontiguousarray(queries, dtype=np.float64), k=1)
    return distance.astype(np.float32), np.asarray(point_labels, dtype=np.int64)[nearest.astype(np.int64)]


def mesh_scene(vertices: np.ndarray, faces: np.ndarray, face_labels: np.ndarray, sampling: SceneSampling,
               rng: np.random.Generator, scan: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """The stored arrays of a (normalised) labelled mesh: input points (``scan`` = points and labels, or
    uniform surface samples), noisy queries with exact distances and nearest-face labels, surface samples."""
    from harness.geometry.mesh import sample_surface

    vertices = np.asarray(vertices, dtype=np.float32)  # the stored mesh: every sample is measured against it
    face_labels = np.asarray(face_labels, dtype=np.int64)
    surface, _, surface_face = sample_surface(vertices, faces, sampling.n_surface, rng)
    if scan is None:
        points, _, point_face = sample_surface(vertices, faces, sampling.n_input, rng)
        scan = (points, face_labels[point_face])
    queries, groups = noisy_queries(sampling, lambda n: sample_surface(vertices, faces, n, rng)[0], rng)
    udf, semantic = label_queries(vertices, faces, face_labels, queries)
    return {
        "points": np.asarray(scan[0], dtype=np.float32),
        "points_semantic": np.asarray(scan[1]).astype(np.int16),
        "query": queries,
        "query_group": groups,
        "udf": udf,
        "semantic": semantic.astype(np.int16),
        "surface": surface,
        "surface_semantic": face_labels[surface_face].astype(np.int16),
        "face_semantic": face_labels.astype(np.int16),
    }


def point_scene(points: np.ndarray, labels: np.ndarray, sampling: SceneSampling,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The stored arrays of a (normalised) labelled point-only scene: the points are the dense surface sample,
    so input points and ground-truth surface are subsets of them (with repeats if there are too few), queries
    are points plus noise, and distances and labels are those of the nearest point."""
    points = np.asarray(points, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    chosen = pick(len(points), sampling.n_input, rng)
    surface = pick(len(points), sampling.n_surface, rng)
    queries, groups = noisy_queries(sampling, lambda n: points[rng.integers(0, len(points), n)], rng)
    udf, semantic = label_by_points(points, labels, queries)
    return {
        "points": points[chosen],
        "points_semantic": labels[chosen].astype(np.int16),
        "query": queries,
        "query_group": groups,
        "udf": udf,
        "semantic": semantic.astype(np.int16),
        "surface": points[surface],
        "surface_semantic": labels[surface].astype(np.int16),
    }


# ----- cache ---------------------------------------------------------------------------------------------------


def scene_files(split: str, index: int, has_mesh: bool) -> tuple[str, ...]:
    """The cached files of one scene, relative to its cache directory."""
    npz, ply = shape_files(split, index)
    return (npz, ply) if has_mesh else (npz,)


def write_scene(directory: Path, split: str, index: int, arrays: Mapping[str, np.ndarray],
                mesh: tuple[np.ndarray, np.ndarray] | None) -> dict[str, FileRecord]:
    """Write one scene's arrays (and its normalised mesh) atomically; returns the file records."""
    npz, ply = shape_files(split, index)
    records = {npz: write_atomic(directory / npz, npz_bytes(arrays))}
    if mesh is not None:
        vertices, faces = mesh
        records[ply] = write_atomic(directory / ply, ply_bytes(np.asarray(vertices, np.float32),
                                                              np.asarray(faces, np.int64)))
    return records


def prepare_cache(directory: Path, header: Mapping[str, Any], jobs: Sequence[tuple[Any, ...]],
                  make: Callable[..., dict[str, FileRecord]], has_mesh: bool, sampling: SceneSampling,
                  desc: str) -> VerifiedCache:
    """:func:`harness.datacache.ensure_cache` over scene jobs ``(split, index, ...)``."""
    return ensure_cache(directory, header, jobs, functools.partial(_files_of, has_mesh), make,
                        workers=sampling.workers, checksum_all=sampling.checksum_all, desc=desc)


def _files_of(has_mesh: bool, job: tuple[Any, ...]) -> tuple[str, ...]:
    return scene_files(job[0], job[1], has_mesh)


# ----- items ---------------------------------------------------------------------------------------------------

STORED = ("points", "points_semantic", "query", "udf", "semantic", "surface", "surface_semantic")


@dataclass(frozen=True)
class SceneItemSizes:
    input_points: int
    query_points: int
    eval_surface_points: int

    @classmethod
    def of(cls, config: Any) -> SceneItemSizes:
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


class SceneSplit(SeededSplit):
    """One split of prepared scenes: each item draws from one npz's stored arrays (:func:`read_arrays`; a damaged
    npz is prepared again)."""

    def __init__(self, name: str, split: str, size: int, seed: int, sizes: SceneItemSizes,
                 cache: VerifiedCache) -> None:
        super().__init__(name, split, size, seed)
        self.sizes = sizes
        self.cache = cache

    def scene(self, index: int) -> dict[str, np.ndarray]:
        """The stored arrays of scene ``index`` an item draws from."""
        return read_arrays(self.cache.directory / shape_files(self.split, index)[0], STORED, self.cache)

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        scene, sizes = self.scene(index), self.sizes
        chosen = rng.choice(len(scene["points"]), sizes.input_points, replace=False)
        query = rng.choice(len(scene["query"]), sizes.query_points, replace=False)
        fixed = self.fixed_rng(index, "surface").choice(len(scene["surface"]), sizes.eval_surface_points,
                                                        replace=False)
        return {
            keys.POINTS: scene["points"][chosen].astype(np.float32, copy=False),
            keys.POINTS_SEMANTIC: scene["points_semantic"][chosen].astype(np.int64),
            keys.QUERY: scene["query"][query].astype(np.float32, copy=False),
            keys.UDF: scene["udf"][query].astype(np.float32, copy=False),
            keys.SEMANTIC: scene["semantic"][query].astype(np.int64),
            keys.SURFACE: scene["surface"][fixed].astype(np.float32, copy=False),
            keys.SURFACE_SEMANTIC: scene["surface_semantic"][fixed].astype(np.int64),
        }


class SceneDataset:
    """A built scene dataset: ``info``, ``split(name)`` and ``mesh_path(split, index)`` (None for point-only
    scenes). ``scenes`` names each split's scenes (ids or relative paths); ``distances_to`` says what the
    distances were measured to ("mesh" or "points")."""

    def __init__(self, info: DatasetInfo, config: Any, cache: VerifiedCache, scenes: Mapping[str, Sequence[str]],
                 has_mesh: bool) -> None:
        self.info = info
        self.config = config
        self.cache = cache
        self.directory = cache.directory
        self.scenes = {split: list(scenes.get(split, ())) for split in info.splits}
        self.has_mesh = has_mesh
        self.distances_to = "mesh" if has_mesh else "points"

    def split(self, name: str) -> SceneSplit:
        check_split(self.info, name)
        return SceneSplit(self.info.name, name, len(self.scenes[name]), self.config.seed,
                          SceneItemSizes.of(self.config), self.cache)

    def mesh_path(self, split: str, index: int) -> Path | None:
        check_index(self.info, self.scenes, split, index)
        return self.directory / shape_files(split, index)[1] if self.has_mesh else None


def scene_info(name: str, classes: Sequence[str], fingerprint: str) -> DatasetInfo:
    return DatasetInfo(name=name, modalities=(keys.POINTS,), targets=(keys.UDF, keys.SEMANTIC), classes=(),
                       semantic_classes=tuple(classes), fingerprint=fingerprint)


# ----- real-format loaders -------------------------------------------------------------------------------------

Entry = tuple[str, tuple[str, ...]]  # a scene's id and the files it is read from


def scene_rng(seed: int, scene_id: str) -> np.random.Generator:
    """The generator a real scene is prepared with: fixed by the seed and the scene's id (not its position)."""
    import zlib

    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(scene_id.encode()),)))


def open_scenes(name: str, config: Any, classes: Sequence[str], entries: Mapping[str, Sequence[Entry]],
                payload: Mapping[str, Any], has_mesh: bool, make: Callable[..., dict[str, FileRecord]],
                cache_dir: str | Path) -> SceneDataset:
    """Fingerprint a real dataset (``payload`` -- its loader version, split and files -- plus what the samples are
    made of), prepare or verify its scenes under ``cache_dir`` and open it. ``make(config, directory, split,
    index, scene_id, *files)`` prepares one scene in a worker process."""
    from harness.datacache import fingerprint

    payload = {**payload, "distances_to": "mesh" if has_mesh else "points", "seed": config.seed,
               "sampling": config.sampling_params()}
    identity = fingerprint(payload)
    directory = Path(cache_dir) / name / identity
    jobs = [(split, index, scene_id, *files) for split, items in entries.items()
            for index, (scene_id, files) in enumerate(items)]
    header = {"dataset": name, "fingerprint": identity, "distances_to": payload["distances_to"], "seed": config.seed,
              "config": config.sampling_params()}
    cache = prepare_cache(directory, header, jobs, functools.partial(make, config, directory), has_mesh, config,
                          f"preparing {name}")
    scenes = {split: [scene_id for scene_id, _ in items] for split, items in entries.items()}
    return SceneDataset(scene_info(name, classes, identity), config, cache, scenes, has_mesh)


def read_id_list(path: Path) -> list[str]:
    """Scene ids, one per non-blank line; a line with spaces in it is an error naming the line."""
    from harness.datacache import numbered_lines

    ids = []
    for number, line in numbered_lines(path):
        if len(line.split()) != 1:
            raise DataFileError(path, f"expected one scene id per line, got {line.strip()!r}", number)
        ids.append(line.strip())
    return ids


def read_xyz_table(path: Path, columns: int) -> np.ndarray:
    """A whitespace-separated text table of ``columns`` numbers per line (S3DIS rooms: x y z r g b), as float64:
    pandas parses a well-formed file fast; anything else goes through the strict parser, whose error names the
    file and line."""
    import pandas as pd

    from harness.datacache import read_table

    try:
        frame = pd.read_csv(path, sep=r"\s+", header=None, dtype=np.float64, engine="c", comment=None)
        table = frame.to_numpy()
        if table.ndim == 2 and table.shape[1] == columns and len(table) and np.isfinite(table).all():
            return table
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        pass
    return read_table(path, columns)
