"""The ``shapenet_onet`` dataset: ShapeNet as Occupancy Networks preprocessed it (Choy et al.'s subset).

Per model ``<root>/<synset>/<model>/``: ``pointcloud.npz`` (surface points and normals in ONet's
normalised frame), ``points.npz`` (occupancy samples, bits packed with ``np.packbits``), ``img_choy2016/``
(24 rendered views); classes come from ``metadata.yaml`` (labels by sorted synset id) and splits from
``<synset>/{train,val,test}.lst``. A synset without split lists is split by a seeded hash of its model ids
(``split_fractions``), and the fingerprint says so.

Shapes without ``points.npz`` (e.g. the shared samples) get occupancy derived from ShapeNetCore.v2
(``mesh_root``): its ``model_normalized`` frame differs from ONet's (which comes from ShapeNetCore.v1) by a
quarter turn about the up axis and a shift and scale, so the mesh is turned into v1's axes and scaled and
shifted so its bounding box matches the point cloud's (:func:`~harness.datacache.fit_checked`). A mesh
that then lies farther than ``FRAME_TOLERANCE`` (median) from ``pointcloud.npz`` is an error. Occupancy
points are drawn as ONet draws its own and labelled by the solid voxels (``model_normalized.solid.binvox``) or by the winding number of
the cleaned mesh (:func:`~harness.datacache.clean_mesh`), the first of ``occupancy_from`` that the files
allow. A shape none of whose sources has its files (say, its ``.obj`` missing from a partial download) is left
out with a warning and counted in the fingerprint (``skip_missing``, the default), or an error. Derived samples
and the fitted mesh
(``mesh_path``) are cached under ``<cache_dir>/shapenet_onet/<fingerprint>/`` (see
:mod:`harness.datacache`); the fingerprint records each shape's source.

Items are ONet's (:class:`~harness.datacache.SampledSplit`: ``points``, ``query``/``occupancy``,
``surface``/``normals`` from the point cloud, ``iou_query``/``iou_occupancy`` in val/test, ``label``,
``index``) plus ``image``: [3,H,W] in [0, 1], a random view in training and view 0 in val/test.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness import data as keys
from harness.data import SPLITS, DatasetInfo, check_split
from harness.datacache import (DataFileError, FileRecord, ItemSizes, SampledSplit, VerifiedCache,
                               check_disjoint_splits, check_index, clean_mesh, ensure_cache, file_stats, fingerprint,
                               fit_checked, load_npz, numbered_lines, plain_copy, read_mesh, read_verified,
                               require_root, shape_rng, split_by_fractions, write_fitted_shape)

from .binvox import read_binvox
from .config import LAYOUT, LOADER_VERSION, MESH_LAYOUT, ShapeNetONetConfig

NAME = "shapenet_onet"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shape:
    synset: str
    model: str
    label: int
    source: str  # where its occupancy comes from: "points", "voxels" or "mesh"

    @property
    def key(self) -> str:
        return f"{self.synset}/{self.model}"


def source_files(root: Path, mesh_root: Path | None, shape_dir: str, source: str) -> list[Path] | None:
    """The files a source of occupancy needs (None where it cannot be had: no mesh_root)."""
    if source == "points":
        return [root / shape_dir / "points.npz"]
    if mesh_root is None:
        return None
    models = mesh_root / shape_dir / "models"
    obj = models / "model_normalized.obj"  # voxels need it too: it anchors the frame fit
    return [obj, models / "model_normalized.solid.binvox"] if source == "voxels" else [obj]


def cache_files(synset: str, model: str) -> tuple[str, str]:
    """The derived samples and the fitted mesh of one shape, relative to the cache directory."""
    return f"{synset}/{model}.npz", f"{synset}/{model}.ply"


def read_cloud(path: Path, names: tuple[str, ...] = ("points",)) -> dict[str, np.ndarray]:
    """Arrays of a pointcloud.npz, each [N,3]."""
    arrays = load_npz(path, names)
    for name, array in arrays.items():
        if array.ndim != 2 or array.shape[1] != 3 or len(array) == 0:
            raise DataFileError(path, f"{name} must be a non-empty [N, 3] array, got shape {array.shape}")
    return arrays


def derive_shape(config: ShapeNetONetConfig, directory: Path, root: str, mesh_root: str, synset: str, model: str,
                 source: str) -> dict[str, FileRecord]:
    """Worker job: fit the v2 mesh into the point cloud's frame, draw occupancy points, label them from the
    voxels or the mesh, and write the samples and the fitted mesh."""
    from harness.geometry.inside import contains

    shape_dir = f"{synset}/{model}"
    cloud_path = Path(root) / shape_dir / "pointcloud.npz"
    cloud = read_cloud(cloud_path)["points"].astype(np.float64)
    obj, *binvox = source_files(Path(root), Path(mesh_root), shape_dir, source)
    vertices, faces = read_mesh(obj)
    frame, fitted, residual = fit_checked(obj, vertices, faces, cloud_path, cloud)
    occ_points = config.occupancy_points(fitted, faces, shape_rng(config.seed, shape_dir))
    exact = occ_points.astype(np.float64)  # labelled as stored
    occupancy = (read_binvox(binvox[0]).contains(frame.inverse(exact)) if binvox
                 else contains(*clean_mesh(fitted, faces), exact))
    arrays = {
        "occ_points": occ_points,
        "occupancy": occupancy,
        "n_uniform": np.int64(config.n_uniform),  # the first n_uniform occ_points are uniform in the box
    }
    return write_fitted_shape(directory, *cache_files(synset, model), arrays, frame, residual, fitted, faces)


DERIVED = ("occ_points", "occupancy", "n_uniform")  # what an item reads of a derived shape's npz


class ONetSplit(SampledSplit):
    """One split; each item reads the shape's point cloud, its occupancy samples (ONet's or derived: a damaged
    derived file is derived again) and one view."""

    def __init__(self, split: str, shapes: list[Shape], config: ShapeNetONetConfig, root: Path,
                 directory: Path, cache: VerifiedCache | None) -> None:
        super().__init__(NAME, split, len(shapes), config.seed, ItemSizes.of(config))
        self.shapes = shapes
        self.config = config
        self.root = root
        self.directory = directory
        self.cache = cache

    def shape(self, index: int) -> dict[str, np.ndarray]:
        shape = self.shapes[index]
        folder = self.root / shape.key
        cloud_path = folder / "pointcloud.npz"
        cloud = read_cloud(cloud_path, ("points", "normals"))
        if shape.source == "points":
            occ_path = folder / "points.npz"
            stored = load_npz(occ_path, ("points", "occupancies"))
            occ_points, bits = stored["points"], stored["occupancies"]
            occupancy = np.unpackbits(bits)[:len(occ_points)].astype(bool)
            if bits.dtype != np.uint8 or len(occupancy) != len(occ_points):
                raise DataFileError(occ_path, f"occupancies must hold {len(occ_points)} bits packed with np.packbits, "
                                              f"got {bits.dtype} {bits.shape}")
            n_uniform = len(occ_points)  # ONet samples them all uniformly in the padded box
        else:
            occ_path = self.directory / cache_files(shape.synset, shape.model)[0]
            stored = read_verified(occ_path, functools.partial(load_npz, names=DERIVED), self.cache)
            occ_points, occupancy, n_uniform = stored["occ_points"], stored["occupancy"], int(stored["n_uniform"])
        needs = [(cloud_path, len(cloud["points"]), "input_points"), (cloud_path, len(cloud["points"]),
                 "eval_surface_points"), (occ_path, len(occ_points), "query_points")]
        if not self.train:
            needs.append((occ_path, n_uniform, "iou_points"))
        for path, available, name in needs:
            if getattr(self.config, name) > available:
                raise DataFileError(path, f"has {available} points, fewer than {name} = {getattr(self.config, name)}")
        return {"surface": cloud["points"], "normals": cloud["normals"], "occ_points": occ_points,
                "occupancy": occupancy, "n_uniform": np.int64(n_uniform), "label": np.int64(shape.label)}

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        item = super().draw(index, rng)
        view = int(rng.integers(self.config.n_views)) if self.train else 0
        item[keys.IMAGE] = self.image(self.root / self.shapes[index].key / "img_choy2016" / f"{view:03d}.jpg")
        return item

    def image(self, path: Path) -> np.ndarray:
        """[3, S, S] float32 in [0, 1], bilinearly resized to ``image_size`` as ONet does."""
        from PIL import Image, UnidentifiedImageError

        size = self.config.image_size
        try:
            with Image.open(path) as opened:
                picture = opened.convert("RGB")
        except (OSError, UnidentifiedImageError) as exc:
            raise DataFileError(path, f"unreadable image ({exc})") from exc
        if picture.size != (size, size):
            picture = picture.resize((size, size), Image.BILINEAR)
        return np.asarray(picture, dtype=np.float32).transpose(2, 0, 1) / 255.0


class ShapeNetONet:
    """A built ONet ShapeNet dataset."""

    def __init__(self, config: ShapeNetONetConfig, info: DatasetInfo, shapes: dict[str, list[Shape]], root: Path,
                 directory: Path, cache: VerifiedCache | None) -> None:
        self.config = config
        self.info = info
        self.shapes = shapes
        self.root = root
        self.directory = directory
        self.cache = cache  # None where no shape is derived

    def split(self, name: str) -> ONetSplit:
        check_split(self.info, name)
        return ONetSplit(name, self.shapes[name], self.config, self.root, self.directory, self.cache)

    def mesh_path(self, split: str, index: int) -> Path | None:
        """The fitted ShapeNetCore.v2 mesh of a derived shape (None for shapes with points.npz: ONet's own
        watertight meshes are not part of its layout)."""
        check_index(self.info, self.shapes, split, index)
        shape = self.shapes[split][index]
        return None if shape.source == "points" else self.directory / cache_files(shape.synset, shape.model)[1]


def load_metadata(root: Path) -> dict[str, str]:
    """synset -> class name (the first of metadata.yaml's comma-separated names, e.g. 'car')."""
    path = root / "metadata.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{NAME}: {path} is missing; expected layout: {LAYOUT}")
    try:
        metadata = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataFileError(path, f"not YAML ({exc})", mark.line + 1 if mark else None) from exc
    if not isinstance(metadata, dict) or not all(isinstance(v, dict) and "name" in v for v in metadata.values()):
        raise DataFileError(path, "expected entries '<synset>: {id: <synset>, name: <name>}'")
    return {str(synset): str(entry["name"]).split(",")[0].strip() for synset, entry in metadata.items()}


def choose_synsets(root: Path, metadata: dict[str, str], config: ShapeNetONetConfig) -> list[str]:
    unknown = [c for c in config.classes if c not in metadata]
    if unknown:
        raise ValueError(f"{NAME}: classes {unknown} are not synsets of {root / 'metadata.yaml'}: {sorted(metadata)}")
    strays = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name.isdigit() and d.name not in metadata)
    if strays:
        raise DataFileError(root / "metadata.yaml", f"has no entry for the synset folders {strays}")
    synsets = sorted(config.classes or metadata)
    for synset in synsets:
        if not (root / synset).is_dir():
            raise FileNotFoundError(f"{NAME}: {root / synset} is missing; expected layout: {LAYOUT}")
    return synsets


def split_models(root: Path, synset: str, config: ShapeNetONetConfig) -> tuple[dict[str, list[str]], Any]:
    """Each split's model ids of one synset, and where the split came from (for the fingerprint)."""
    lists = {split: root / synset / f"{split}.lst" for split in SPLITS}
    if all(path.is_file() for path in lists.values()):
        models: dict[str, list[str]] = {}
        for split, path in lists.items():
            models[split] = []
            for number, text in numbered_lines(path):
                if not (root / synset / text.strip()).is_dir():
                    raise DataFileError(path, f"model {text.strip()!r} has no folder in {root / synset}", number)
                models[split].append(text.strip())
        return models, "lists"
    ids = sorted(d.name for d in (root / synset).iterdir() if d.is_dir())
    fallback = {"fallback": dict(config.split_fractions), "seed": config.seed}
    return split_by_fractions(ids, config.split_fractions, config.seed), fallback


def occupancy_source(root: Path, mesh_root: Path | None, shape_dir: str, config: ShapeNetONetConfig) -> str | None:
    """The first source of ``occupancy_from`` whose files exist (None: no source has its files)."""
    for source in config.occupancy_from:
        needed = source_files(root, mesh_root, shape_dir, source)
        if needed is not None and all(path.is_file() for path in needed):
            return source
    return None


def lacking(root: Path, mesh_root: Path | None, shape_dir: str, config: ShapeNetONetConfig) -> str:
    """What each source of ``occupancy_from`` lacks for ``shape_dir``: its first missing file, or the mesh_root."""
    needs = []
    for source in config.occupancy_from:
        needed = source_files(root, mesh_root, shape_dir, source)
        missing = "dataset.mesh_root" if needed is None else next(str(path) for path in needed if not path.is_file())
        needs.append(f"{source} needs {missing}")
    return f"{shape_dir}: {', '.join(needs)}"


def check_unsourced(unsourced: list[str], kept: dict[str, list[Shape]], root: Path, mesh_root: Path | None,
                    config: ShapeNetONetConfig) -> None:
    """Allow leaving out the shapes (``<synset>/<model>``) without an occupancy source, beside the ``kept`` ones,
    with a warning naming one and the count: only with ``skip_missing`` (else an error), and never every shape."""
    where = "" if mesh_root else " (no dataset.mesh_root given)"
    total = len(unsourced) + sum(map(len, kept.values()))
    reason = (f"{NAME}: {len(unsourced)} of {total} shapes have no occupancy source among "
              f"{list(config.occupancy_from)}{where}, e.g. {lacking(root, mesh_root, unsourced[0], config)}")
    if not any(kept.values()):
        raise FileNotFoundError(f"{reason}; expected layout: {LAYOUT}, or a mesh_root with {MESH_LAYOUT}")
    if not config.skip_missing:
        raise FileNotFoundError(f"{reason}; set dataset.skip_missing=true to leave them out")
    log.warning("%s; left out (dataset.skip_missing=true)", reason)


def build(config: ShapeNetONetConfig, cache_dir: str | Path) -> ShapeNetONet:
    """Validate ``config``, find the shapes, derive or verify missing occupancy samples under ``cache_dir``."""
    config = plain_copy(config, ShapeNetONetConfig)
    config.validate()
    root = require_root(NAME, config.root, LAYOUT)
    mesh_root = Path(config.mesh_root).expanduser() if config.mesh_root else None
    if mesh_root is not None and not mesh_root.is_dir():
        raise FileNotFoundError(f"{NAME}: dataset.mesh_root={config.mesh_root!r} is not a folder; expected "
                                f"layout: {MESH_LAYOUT}")
    metadata = load_metadata(root)
    synsets = choose_synsets(root, metadata, config)
    listed = {synset: split_models(root, synset, config) for synset in synsets}
    check_disjoint_splits(NAME, {split: [f"{synset}/{model}" for synset, (models, _) in listed.items()
                                         for model in models[split]] for split in SPLITS},
                          config.strict_splits, f"{root}/<synset>/{{train,val,test}}.lst")
    shapes: dict[str, list[Shape]] = {split: [] for split in SPLITS}
    unsourced: list[str] = []
    split_sources = {}
    for label, synset in enumerate(synsets):
        models, split_sources[synset] = listed[synset]
        for split, ids in models.items():
            for model in ids:
                source = occupancy_source(root, mesh_root, f"{synset}/{model}", config)
                if source is None:
                    unsourced.append(f"{synset}/{model}")
                else:
                    shapes[split].append(Shape(synset, model, label, source))
    if unsourced:
        check_unsourced(unsourced, shapes, root, mesh_root, config)
    everything = [shape for split in shapes.values() for shape in split]
    derived = [shape for shape in everything if shape.source != "points"]
    files = [root / "metadata.yaml"] + [root / s / f"{split}.lst" for s in synsets if split_sources[s] == "lists"
                                        for split in SPLITS]
    for shape in everything:  # the image folder's own mtime changes when views are added or removed
        files += [root / shape.key / name for name in ("pointcloud.npz", "img_choy2016", "img_choy2016/cameras.npz")]
        files += source_files(root, mesh_root, shape.key, "points") if shape.source == "points" else []
    payload = {"dataset": NAME, "loader_version": LOADER_VERSION,
               "config": {**config.generation_params(), "classes": synsets}, "split": split_sources,
               "shapes": {split: [f"{s.key}:{s.source}" for s in items] for split, items in shapes.items()},
               "files": file_stats(root, files),
               "mesh_files": file_stats(mesh_root, [p for s in derived
                                                    for p in source_files(root, mesh_root, s.key, s.source)])
               if mesh_root else []}
    if unsourced:  # absent otherwise, so the fingerprints of complete datasets stay as they were
        payload["skipped_missing"] = len(unsourced)
    identity = fingerprint(payload)
    directory = Path(cache_dir) / NAME / identity
    cache = None
    if derived:
        cache = ensure_cache(directory, {"dataset": NAME, "fingerprint": identity, "config": payload["config"]},
                             [(s.synset, s.model, s.source) for s in derived], lambda job: cache_files(job[0], job[1]),
                             functools.partial(derive_shape, config, directory, str(root), str(mesh_root)),
                             workers=config.workers, checksum_all=config.checksum_all,
                             desc=f"deriving {NAME} occupancy")
    info = DatasetInfo(name=NAME, modalities=("points", "image"), targets=("occupancy", "label"),
                       classes=tuple(metadata[s] for s in synsets), splits=SPLITS, fingerprint=identity)
    return ShapeNetONet(config, info, shapes, root, directory, cache)
