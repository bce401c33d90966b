"""The ``scannet`` dataset: ScanNet v2 scenes with the 20 benchmark classes, prepared as the contextualising paper
prepares them (NDF's recipe, :mod:`harness_plugins.datasets.scenes`).

Two layouts (``layout``; ``auto`` picks raw where ``<root>/scans`` exists):

* ``raw``: ``<root>/scans/<scene>/<scene>_vh_clean_2.ply`` (the mesh) and ``<scene>_vh_clean_2.labels.ply``
  (the same vertices, NYU40 ids in the ``label`` vertex property). Ids map to the 20 benchmark classes by the
  standard mapping (:data:`~harness_plugins.datasets.scenes.NYU40_TO_SCANNET20`; others -> -1); a face takes
  the label two or three of its vertices share (-1 if all differ); distances and labels are exact to the
  mesh (``mesh_path`` gives the normalised mesh). Input points are uniform samples of the mesh.
* ``arrays``: mmdetection3d's converter output, ``<scene>_vert_all.npy`` [N,6] (x y z r g b) with
  ``<scene>_sem_label_all.npy`` (NYU40 ids), in ``<root>`` or one folder below. Only points exist, so the points
  are the dense surface sample: distances are to the nearest point and labels that point's (the fingerprint
  payload and ``dataset.distances_to`` say ``"points"``), and ``mesh_path`` is None.

Splits: with ``scannetv2_train.txt`` and ``scannetv2_val.txt`` in the root, the val list is the test split (the
paper tests on ScanNet's validation scans) and ``val_fraction`` of the train list becomes val; without them,
the scenes found are split by a seeded hash of their ids (``split_fractions``), and the fingerprint says so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data import SPLITS
from harness.datacache import DataFileError, FileRecord, file_stats, plain_copy, require_root

from ..ply_io import read_ply
from ..scenes import (NYU40_TO_SCANNET20, SCANNET20, Entry, SceneDataset, assign_splits, face_majority, map_ids,
                      mesh_scene, normalise, open_scenes, point_scene, scene_rng, write_scene)
from .config import LAYOUT, LOADER_VERSION, ScanNetConfig

NAME = "scannet"
LISTS = {"train": "scannetv2_train.txt", "val": "scannetv2_val.txt"}
MESH, LABELS = "_vh_clean_2.ply", "_vh_clean_2.labels.ply"
VERTICES, SEMANTIC = "_vert_all.npy", "_sem_label_all.npy"


def detect_layout(root: Path, layout: str) -> str:
    if layout != "auto":
        return layout
    return "raw" if (root / "scans").is_dir() else "arrays"


def find_scenes(root: Path, layout: str) -> dict[str, tuple[str, ...]]:
    """Scene id -> its files, for every scene of the layout under ``root``."""
    scenes: dict[str, tuple[str, ...]] = {}
    if layout == "raw":
        for folder in sorted(p for p in (root / "scans").glob("*") if p.is_dir()):
            mesh = folder / f"{folder.name}{MESH}"
            if mesh.is_file():
                scenes[folder.name] = (str(mesh), str(folder / f"{folder.name}{LABELS}"))
    else:
        for vertices in sorted([*root.glob(f"*{VERTICES}"), *root.glob(f"*/*{VERTICES}")]):
            scene = vertices.name[:-len(VERTICES)]
            if scene in scenes:
                raise DataFileError(vertices, f"scene {scene} is also at {scenes[scene][0]}")
            scenes[scene] = (str(vertices), str(vertices.with_name(f"{scene}{SEMANTIC}")))
    if not scenes:
        raise FileNotFoundError(f"{NAME}: no scenes of the {layout} layout in {root}; expected layout: {LAYOUT}")
    for files in scenes.values():
        if not Path(files[1]).is_file():
            raise FileNotFoundError(f"{NAME}: {files[1]} is missing (the labels of {files[0]}); expected layout: "
                                    f"{LAYOUT}")
    return scenes


def read_arrays(vertices_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """[N,3] float64 points and [N] NYU40 ids of a converted scene; a wrong shape or type names the file."""
    arrays = []
    for path in (vertices_path, labels_path):
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except (OSError, ValueError, EOFError) as exc:
            raise DataFileError(path, f"unreadable .npy ({type(exc).__name__}: {exc})") from exc
    points, ids = arrays
    if points.ndim != 2 or points.shape[1] < 3 or points.dtype.kind != "f" or not len(points):
        raise DataFileError(vertices_path, f"expected a float [N,6] array (x y z r g b), got {points.dtype} "
                                           f"{list(points.shape)}")
    if not np.isfinite(points[:, :3]).all():
        row = int(np.flatnonzero(~np.isfinite(points[:, :3]).all(axis=1))[0])
        raise DataFileError(vertices_path, f"point {row} has a non-finite coordinate")
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise DataFileError(labels_path, f"expected an integer [N] array of NYU40 ids, got {ids.dtype} "
                                         f"{list(ids.shape)}")
    if len(ids) != len(points):
        raise DataFileError(labels_path, f"has {len(ids)} labels for the {len(points)} points of {vertices_path}")
    return points[:, :3].astype(np.float64), ids


def read_raw(mesh_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices [V,3], faces [F,3] and per-vertex NYU40 ids of a raw scene."""
    mesh = read_ply(mesh_path)
    if not len(mesh.faces):
        raise DataFileError(mesh_path, "no faces")
    vertices = mesh.vertices(mesh_path)
    labelled = read_ply(labels_path)
    if "label" not in labelled.vertex:
        raise DataFileError(labels_path, f"no 'label' vertex property (it has {', '.join(labelled.vertex)})")
    ids = labelled.vertex["label"]
    if len(ids) != len(vertices):
        raise DataFileError(labels_path, f"has {len(ids)} vertices, {mesh_path} has {len(vertices)}")
    return vertices, mesh.faces, ids


def prepare_scene(config: ScanNetConfig, directory: Path, split: str, index: int, scene: str, first: str,
                  second: str) -> dict[str, FileRecord]:
    """Worker job: read, label, normalise and sample one scene, and write its files."""
    rng = scene_rng(config.seed, scene)
    if first.endswith(VERTICES):
        points, ids = read_arrays(Path(first), Path(second))
        normalised, loc, scale = normalise(points, first)
        arrays = point_scene(normalised, map_ids(ids, NYU40_TO_SCANNET20), config, rng)
        mesh = None
    else:
        vertices, faces, ids = read_raw(Path(first), Path(second))
        normalised, loc, scale = normalise(vertices, first)
        face_labels = face_majority(map_ids(ids, NYU40_TO_SCANNET20), faces)
        mesh = (normalised.astype(np.float32), faces)
        arrays = mesh_scene(mesh[0], faces, face_labels, config, rng)
    arrays.update(loc=loc, scale=np.float64(scale))
    return write_scene(directory, split, index, arrays, mesh)


def build(config: ScanNetConfig, cache_dir: str | Path) -> SceneDataset:
    """Validate ``config``, find the scenes and their split, fingerprint them, and prepare or verify their
    samples under ``cache_dir``."""
    config = plain_copy(config, ScanNetConfig)
    config.validate()
    root = require_root(NAME, config.root, LAYOUT)
    layout = detect_layout(root, config.layout)
    scenes = find_scenes(root, layout)
    parts, source, lists = assign_splits(NAME, LAYOUT, root, scenes, config, LISTS, "official")
    entries: dict[str, list[Entry]] = {split: [(scene, scenes[scene]) for scene in parts.get(split, [])]
                                       for split in SPLITS}
    used = [Path(f) for items in entries.values() for _, files in items for f in files]
    payload = {"dataset": NAME, "loader_version": LOADER_VERSION, "layout": layout, "split": source,
               "splits": {split: [scene for scene, _ in items] for split, items in entries.items()},
               "files": file_stats(root, used + lists)}
    return open_scenes(NAME, config, SCANNET20, entries, payload, layout == "raw", prepare_scene, cache_dir)
