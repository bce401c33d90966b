"""Scene datasets of issue 5: synthetic_rooms (procedural rooms, virtual scans) and the real-format loaders scannet
(raw meshes and mmdetection3d arrays), s3dis and scenenn -- on small files written here and on the shared ScanNet
sample in ../shared/data/real/scannet."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from harness_plugins.datasets import s3dis, scannet, scenenn, synthetic_rooms
from harness_plugins.datasets.ply_io import read_ply
from harness_plugins.datasets.s3dis import S3DISConfig
from harness_plugins.datasets.s3dis.dataset import build as build_s3dis
from harness_plugins.datasets.scannet import ScanNetConfig
from harness_plugins.datasets.scannet.dataset import build as build_scannet
from harness_plugins.datasets.scenenn import SceneNNConfig
from harness_plugins.datasets.scenenn.dataset import build as build_scenenn
from harness_plugins.datasets.scenes import SCANNET20, label_queries
from harness_plugins.datasets.synthetic_rooms import PROFILES, SyntheticRoomsConfig
from harness_plugins.datasets.synthetic_rooms.dataset import build as build_rooms
from harness_plugins.datasets.synthetic_rooms.generate import generate_scene
from harness_plugins.datasets.synthetic_rooms.room import generate_room
from harness_plugins.datasets.synthetic_rooms.scan import depth_sigma, scan_room
from pykdtree.kdtree import KDTree

from harness import data as keys
from harness.datacache import MANIFEST, DataFileError, shape_files
from harness.registry import default_registry
from harness.specs import Kind

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "data" / "real" / "scannet"
needs_real = pytest.mark.skipif(not (REAL / "scene0000_00_vert_all.npy").is_file(),
                                reason=f"the shared ScanNet sample is not at {REAL}")
SPECS = {spec.name: spec for spec in (synthetic_rooms.SPEC, scannet.SPEC, s3dis.SPEC, scenenn.SPEC)}
SPLITS = ("train", "val", "test")
SMOKE = SyntheticRoomsConfig(**{**PROFILES["smoke"], "workers": 1})
SMALL = {"n_input": 256, "n_queries": 2000, "n_surface": 1000, "input_points": 128, "query_points": 500,
         "eval_surface_points": 400, "workers": 1}
# the NYU40 -> ScanNet20 mapping written out by hand from the benchmark's class list
BY_HAND = {1: "wall", 2: "floor", 3: "cabinet", 4: "bed", 5: "chair", 6: "sofa", 7: "table", 8: "door", 9: "window",
           10: "bookshelf", 11: "picture", 12: "counter", 14: "desk", 16: "curtain", 24: "refrigerator",
           28: "shower curtain", 33: "toilet", 34: "sink", 36: "bathtub", 39: "otherfurniture"}


def raises_at(path: Path, line: int | None = None):
    """pytest.raises for a DataFileError naming ``path`` (and ``line``)."""
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    return pytest.raises(DataFileError, match=f"^{where}".replace(".", r"\."))


def stored(dataset, split: str, index: int) -> dict[str, np.ndarray]:
    with np.load(dataset.directory / shape_files(split, index)[0]) as npz:
        return dict(npz)


def brute_force(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance of each point to every triangle (the smaller of the distance to the plane where the projection
    falls inside and the distances to the three edge segments); returns (min distance, [P,F] all distances)."""
    a, b, c = (vertices[faces[:, k]].astype(np.float64) for k in range(3))
    normal = np.cross(b - a, c - a)
    norm2 = (normal ** 2).sum(1)
    every = []
    for p in np.asarray(points, dtype=np.float64):
        height = ((p - a) * normal).sum(1) / np.where(norm2 > 0, np.sqrt(norm2), 1)
        q = p - height[:, None] * normal / np.where(norm2 > 0, np.sqrt(norm2), 1)[:, None]
        signs = [((np.cross(e1 - e0, q - e0)) * normal).sum(1) for e0, e1 in ((a, b), (b, c), (c, a))]
        inside = (norm2 > 0) & (np.all([s >= 0 for s in signs], axis=0) | np.all([s <= 0 for s in signs], axis=0))
        best = np.where(inside, np.abs(height), np.inf)
        for e0, e1 in ((a, b), (b, c), (c, a)):
            d = e1 - e0
            t = np.clip(((p - e0) * d).sum(1) / np.maximum((d ** 2).sum(1), 1e-300), 0, 1)
            best = np.minimum(best, np.linalg.norm(p - (e0 + t[:, None] * d), axis=1))
        every.append(best)
    every = np.array(every)
    return every.min(axis=1), every


def check_labels_against_brute_force(queries, udf, semantic, vertices, faces, face_labels) -> int:
    """udf equals the brute-force distance; where one label's face is clearly nearest, that is the label.
    Returns how many queries had an unambiguous label."""
    nearest, every = brute_force(queries, vertices, faces)
    np.testing.assert_allclose(udf, nearest, atol=2e-6, rtol=1e-5)
    checked = 0
    for q in range(len(queries)):
        close = np.flatnonzero(every[q] <= nearest[q] + 1e-6)
        if len(set(face_labels[close].tolist())) == 1:
            assert semantic[q] == face_labels[close[0]]
            checked += 1
    return checked


# ----- PLY files written by the tests ---------------------------------------------------------------------------

PLY_TYPES = {np.dtype("f4"): "float", np.dtype("f8"): "double", np.dtype("u1"): "uchar", np.dtype("i4"): "int",
             np.dtype("u2"): "ushort", np.dtype("u4"): "uint", np.dtype("i2"): "short"}


def ply_data(vertices: np.ndarray, faces: np.ndarray, extra: dict[str, np.ndarray] | None = None,
             binary: bool = True) -> bytes:
    """A PLY file: x y z float, the ``extra`` vertex properties (numpy dtype decides the PLY type) and faces."""
    columns = {"x": vertices[:, 0].astype("f4"), "y": vertices[:, 1].astype("f4"), "z": vertices[:, 2].astype("f4"),
               **(extra or {})}
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", "comment written by the tests",
              f"element vertex {len(vertices)}"]
    header += [f"property {PLY_TYPES[v.dtype]} {k}" for k, v in columns.items()]
    header += [f"element face {len(faces)}", "property list uchar int vertex_indices", "end_header"]
    head = ("\n".join(header) + "\n").encode()
    if binary:
        table = np.zeros(len(vertices), dtype=[(k, "<" + v.dtype.str[1:]) for k, v in columns.items()])
        for k, v in columns.items():
            table[k] = v
        face_table = np.zeros(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
        face_table["n"], face_table["v"] = 3, faces
        return head + table.tobytes() + face_table.tobytes()
    rows = [" ".join(repr(v[i].item()) for v in columns.values()) for i in range(len(vertices))]
    rows += [f"3 {a} {b} {c}" for a, b, c in faces]
    return head + ("\n".join(rows) + "\n").encode()


def quad(corners) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(corners, dtype=np.float64), np.array([[0, 1, 2], [0, 2, 3]])


def hand_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 4 x 4 m floor (NYU 2) with a 3 m wall along x = 0 (NYU 1), a box (NYU 5, chair) at the far corner and
    a ceiling strip (NYU 22: not a benchmark class) high up: vertices, faces, per-vertex NYU40 ids."""
    pieces = [(quad([[0, 0, 0], [4, 0, 0], [4, 4, 0], [0, 4, 0]]), 2),
              (quad([[0, 0, 0], [0, 4, 0], [0, 4, 3], [0, 0, 3]]), 1),
              (trimesh.creation.box(extents=(0.5, 0.5, 0.5), transform=trimesh.transformations.translation_matrix(
                  (3.5, 3.5, 0.25))), 5),
              (quad([[3, 0, 3], [4, 0, 3], [4, 1, 3], [3, 1, 3]]), 22)]
    vertices, faces, ids, offset = [], [], [], 0
    for piece, nyu in pieces:
        v, f = (piece.vertices, piece.faces) if isinstance(piece, trimesh.Trimesh) else piece
        vertices.append(np.asarray(v, np.float64))
        faces.append(np.asarray(f) + offset)
        ids.append(np.full(len(v), nyu))
        offset += len(v)
    return np.concatenate(vertices), np.concatenate(faces), np.concatenate(ids)


def write_raw_scannet(root: Path, scene: str, shift: float = 0.0, binary_labels: bool = True) -> Path:
    vertices, faces, ids = hand_scene()
    vertices = vertices + shift
    folder = root / "scans" / scene
    folder.mkdir(parents=True, exist_ok=True)
    colours = {c: np.full(len(vertices), 128, np.uint8) for c in ("red", "green", "blue", "alpha")}
    (folder / f"{scene}_vh_clean_2.ply").write_bytes(ply_data(vertices, faces, colours))
    labels = {**colours, "label": ids.astype(np.uint16)}
    (folder / f"{scene}_vh_clean_2.labels.ply").write_bytes(ply_data(vertices, faces, labels, binary=binary_labels))
    return folder


# ----- specs and configuration ----------------------------------------------------------------------------------


def test_specs_registered_and_configs_valid():
    registry = default_registry()
    assert set(SPECS) <= set(registry.names(Kind.DATASET))
    for spec in SPECS.values():
        assert callable(spec.load())
        assert spec.capabilities.modalities == ("points",) and spec.capabilities.targets == ("udf", "semantic")
        assert set(spec.profiles) == {"smoke", "quick"}
        spec.config().validate() if spec.name == "synthetic_rooms" else spec.config(root="/data").validate()
        for overrides in spec.profiles.values():
            spec.config(**overrides).validate()
    assert SPECS["synthetic_rooms"].capabilities.synthetic
    assert not any(SPECS[name].capabilities.synthetic for name in ("scannet", "s3dis", "scenenn"))
    defaults = SyntheticRoomsConfig()
    assert (defaults.n_input, defaults.n_queries, defaults.n_surface, defaults.query_points) == (
        10_240, 100_000, 100_000, 50_000)
    assert defaults.query_sigmas == [0.08, 0.02, 0.003] and defaults.query_fractions == [0.01, 0.49, 0.5]


def test_harness_list_shows_the_scene_datasets():
    """(That their plugin module imports nothing heavy is the contract suite's check, tests/test_contracts.py.)"""
    result = subprocess.run([str(Path(sys.executable).with_name("harness")), "list"], capture_output=True, text=True,
                            check=True)
    assert "synthetic_rooms" in result.stdout and "scenenn" in result.stdout


@pytest.mark.parametrize("config, field", [
    (dataclasses.replace(SMOKE, room_types=["attic"]), "room_types"),
    (dataclasses.replace(SMOKE, query_fractions=[0.5, 0.5]), "query_sigmas"),
    (dataclasses.replace(SMOKE, query_points=10**6), "query_points"),
    (dataclasses.replace(SMOKE, scan_fov=200.0), "scan_fov"),
    (ScanNetConfig(root="x", layout="mesh"), "layout"),
    (S3DISConfig(root="x", test_areas=[1]), "an area is in two splits"),
    (S3DISConfig(root="x", unknown_class="stairs"), "unknown_class"),
    (SceneNNConfig(root="x", classes=["a"], label_map={"3": "b"}), "label_map"),
    (SceneNNConfig(root="x", split_fractions={"train": 1, "test": 1}), "split_fractions"),
])
def test_bad_config_names_the_field(config, field):
    with pytest.raises(ValueError, match=field):
        config.validate()


@pytest.mark.parametrize("name", ["scannet", "s3dis", "scenenn"])
def test_missing_root_names_key_and_layout(name, tmp_path):
    spec = SPECS[name]
    with pytest.raises(FileNotFoundError, match=f"{name}: .*dataset.root.*expected layout"):
        spec.build(spec.config(), tmp_path)


def test_nyu40_mapping_and_face_majority():
    from harness_plugins.datasets.scenes import NYU40_TO_SCANNET20, face_majority, map_ids

    raw = np.arange(0, 42)
    mapped = map_ids(raw, NYU40_TO_SCANNET20)
    for nyu in raw:
        assert mapped[nyu] == (SCANNET20.index(BY_HAND[nyu]) if nyu in BY_HAND else -1), nyu
    faces = np.array([[0, 1, 2], [0, 1, 3], [2, 3, 4], [0, 3, 4]])
    assert face_majority(np.array([5, 5, 7, 7, 1]), faces).tolist() == [5, 5, 7, -1]


# ----- synthetic rooms --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rooms(tmp_path_factory: pytest.TempPathFactory):
    return build_rooms(SMOKE, tmp_path_factory.mktemp("rooms"))


def all_rooms(dataset):
    return [(split, i) for split in SPLITS for i in range(len(dataset.split(split)))]


def test_rooms_info_and_items(rooms):
    info = rooms.info
    assert info.semantic_classes == SCANNET20 and info.classes == ()
    assert info.modalities == ("points",) and info.targets == ("udf", "semantic") and rooms.distances_to == "mesh"
    assert [len(rooms.split(s)) for s in SPLITS] == [3, 1, 1]
    expected = {keys.POINTS: ((SMOKE.input_points, 3), torch.float32),
                keys.POINTS_SEMANTIC: ((SMOKE.input_points,), torch.int64),
                keys.QUERY: ((SMOKE.query_points, 3), torch.float32), keys.UDF: ((SMOKE.query_points,), torch.float32),
                keys.SEMANTIC: ((SMOKE.query_points,), torch.int64),
                keys.SURFACE: ((SMOKE.eval_surface_points, 3), torch.float32),
                keys.SURFACE_SEMANTIC: ((SMOKE.eval_surface_points,), torch.int64), keys.INDEX: ((), torch.int64)}
    train, val = rooms.split("train"), rooms.split("val")
    for item in (train[1], val[0]):
        assert {k: (tuple(v.shape), v.dtype) for k, v in item.items()} == expected
    first, second = val[0], val[0]
    assert all(torch.equal(first[k], second[k]) for k in first)  # val/test items are fixed
    torch.manual_seed(0)
    a = train[0]
    b = train[0]
    assert not torch.equal(a[keys.QUERY], b[keys.QUERY]) and not torch.equal(a[keys.POINTS], b[keys.POINTS])
    assert torch.equal(a[keys.SURFACE], b[keys.SURFACE])  # the evaluation surface is fixed in every split
    scene = stored(rooms, "train", 0)
    rows = {tuple(r) for r in scene["query"].tolist()}
    assert all(tuple(r) in rows for r in a[keys.QUERY].tolist())  # a subset of the stored queries
    batch = next(iter(torch.utils.data.DataLoader(train, batch_size=2)))
    assert batch[keys.QUERY].shape == (2, SMOKE.query_points, 3)
    assert rooms.mesh_path("test", 0).is_file()
    with pytest.raises(IndexError):
        rooms.mesh_path("val", 1)


def test_rooms_deterministic_across_builds_and_workers(rooms, tmp_path):
    again = build_rooms(dataclasses.replace(SMOKE, workers=2), tmp_path)
    assert again.info.fingerprint == rooms.info.fingerprint
    files = lambda d: json.loads((d.directory / MANIFEST).read_text())["files"]
    assert {k: v["sha256"] for k, v in files(again).items()} == {k: v["sha256"] for k, v in files(rooms).items()}
    arrays, _ = generate_scene(SMOKE, "train", 0)
    assert all(np.array_equal(v, stored(rooms, "train", 0)[k]) for k, v in arrays.items())
    other, _ = generate_scene(dataclasses.replace(SMOKE, seed=1), "train", 0)
    assert not np.array_equal(other["surface"], arrays["surface"])
    # fields that only change what items draw keep the fingerprint; generation fields change it
    base = rooms.info.fingerprint
    from harness_plugins.datasets.synthetic_rooms.dataset import fingerprint
    assert fingerprint(dataclasses.replace(SMOKE, query_points=7, workers=2)) == base
    assert fingerprint(dataclasses.replace(SMOKE, scan_noise=2.0)) != base


def test_rooms_normalised_open_with_openings(rooms):
    for split, index in all_rooms(rooms):
        mesh = trimesh.load(rooms.mesh_path(split, index), process=False)
        low, high = mesh.vertices.min(0), mesh.vertices.max(0)
        assert np.isclose((high - low).max(), 1.0, atol=1e-6)
        np.testing.assert_allclose((low + high) / 2, 0, atol=1e-6)
        assert not mesh.is_watertight
        scene = stored(rooms, split, index)
        walls = scene["face_semantic"] == SCANNET20.index("wall")
        wall_mesh = trimesh.Trimesh(mesh.vertices, mesh.faces[walls], process=False)
        edges = trimesh.grouping.group_rows(wall_mesh.edges_sorted, require_count=1)
        assert len(edges) > 0  # open sheets: boundary edges
        width, depth, height = scene["room_size"]
        full = 2 * (width + depth) * height
        # every room has a door: the walls have less area than the closed box's sides
        assert wall_mesh.area * float(scene["scale"]) ** 2 < full - 1.5
        assert np.isclose(wall_mesh.area * float(scene["scale"]) ** 2, full, rtol=0.5)


def test_room_labels(rooms):
    seen = set()
    for split, index in all_rooms(rooms):
        scene = stored(rooms, split, index)
        for key in ("face_semantic", "surface_semantic", "semantic", "points_semantic"):
            assert scene[key].min() >= -1 and scene[key].max() < len(SCANNET20), key
        present = {SCANNET20[k] for k in np.unique(scene["face_semantic"]) if k >= 0}
        assert {"wall", "floor", "door"} <= present
        seen |= present
    assert len(seen) >= 10, seen


def test_room_types_have_their_furniture():
    classes = {}
    for kind in ("bedroom", "living_room", "office", "kitchen", "bathroom"):
        _, _, labels = generate_room(kind, np.random.default_rng(3), 1.0).mesh()
        classes[kind] = {SCANNET20[k] for k in np.unique(labels) if k >= 0}
    assert "bed" in classes["bedroom"] and {"sofa", "otherfurniture"} & classes["living_room"]
    assert "desk" in classes["office"] and "chair" in classes["office"]
    assert {"counter", "refrigerator"} <= classes["kitchen"]
    assert {"toilet", "sink"} <= classes["bathroom"]


def test_scan_is_partial_and_on_the_surface(rooms):
    room = generate_room("office", np.random.default_rng(5), 1.0)
    vertices, faces, labels = room.mesh()
    scan = scan_room(room, vertices, faces, 16, 160, 120, 58.0, 4.0, 1.0, np.random.default_rng(0))
    surface = trimesh.Trimesh(vertices, faces, process=False).sample(20_000, seed=0)
    gaps = KDTree(scan.points).query(np.asarray(surface), k=1)[0]
    # real coverage where the cameras looked, and whole regions no camera saw (more than 10 cm from any point)
    assert np.median(gaps) < 0.05 and (gaps > 0.1).mean() > 0.05
    # the noise is along the ray: at most 7 sigma of the deepest depth, times the ray's length per unit depth at
    # the image corner (7 sigma: a chance of 3e-12 per point)
    corner = float(np.sqrt(1 + (1 + 0.75 ** 2) * np.tan(np.radians(29.0)) ** 2))
    bound = 7 * depth_sigma(np.array(4.0), 1.0) * corner
    distance, _ = label_queries(vertices, faces, labels, scan.points)
    assert distance.max() < bound
    assert np.median(distance) > 1e-4  # noisy, not exactly on the mesh
    # the stored scans: near the mesh within the noise (normalised units), labelled as their faces
    for split, index in all_rooms(rooms):
        scene = stored(rooms, split, index)
        mesh = trimesh.load(rooms.mesh_path(split, index), process=False)
        distance, nearest = label_queries(mesh.vertices, mesh.faces, scene["face_semantic"], scene["points"])
        assert distance.max() < bound / float(scene["scale"])
        assert (nearest == scene["points_semantic"]).mean() > 0.9


def test_query_noise_groups(rooms):
    counts = SMOKE.group_counts()
    assert counts == [41, 2007, 2048]  # 0.01 / 0.49 / 0.5 of 4096
    for split, index in all_rooms(rooms):
        scene = stored(rooms, split, index)
        groups = scene["query_group"]
        assert [int((groups == g).sum()) for g in range(3)] == counts
        assert (np.diff(groups) >= 0).all()  # stored in group order
        medians = [float(np.median(scene["udf"][groups == g])) for g in range(3)]
        for median, sigma in zip(medians, SMOKE.query_sigmas):
            assert median <= 0.8 * sigma  # the median |N(0, sigma)| along a plane's normal is 0.674 sigma
        assert medians[2] >= 0.3 * SMOKE.query_sigmas[2] and medians[1] >= 0.3 * SMOKE.query_sigmas[1]
        assert medians[0] > medians[1] > medians[2]


def test_room_udf_and_labels_match_brute_force(rooms):
    item = rooms.split("val")[0]
    mesh = trimesh.load(rooms.mesh_path("val", 0), process=False)
    face_labels = stored(rooms, "val", 0)["face_semantic"].astype(np.int64)
    picked = np.linspace(0, SMOKE.query_points - 1, 40).astype(int)
    checked = check_labels_against_brute_force(item[keys.QUERY].numpy()[picked], item[keys.UDF].numpy()[picked],
                                               item[keys.SEMANTIC].numpy()[picked], np.asarray(mesh.vertices),
                                               np.asarray(mesh.faces), face_labels)
    assert checked >= 30


def test_nearest_face_labels_hand_cases():
    # a floor triangle (label 1) and a wall triangle (label 0) meeting at x = 0, and a box top (label 6)
    vertices = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 0], [0, 2, 0], [0, 0, 2],
                         [1, 1, 0.5], [1.2, 1, 0.5], [1, 1.2, 0.5]], dtype=np.float64)
    faces = np.array([[0, 1, 2], [3, 4, 5], [6, 7, 8]])
    labels = np.array([1, 0, 6])
    queries = np.array([[0.5, 0.3, 0.1], [0.1, 0.3, 0.5], [1.05, 1.05, 0.6], [0.6, 0.2, 0.59], [-0.3, 0.5, 0.5]])
    distance, semantic = label_queries(vertices, faces, labels, queries)
    assert semantic.tolist() == [1, 0, 6, 1, 0]
    np.testing.assert_allclose(distance, [0.1, 0.1, 0.1, 0.59, 0.3], atol=1e-6)


def test_damaged_room_cache_is_rebuilt(rooms, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(rooms.directory.parent.parent, copy)
    directory = copy / "synthetic_rooms" / rooms.info.fingerprint
    overwritten, truncated, deleted, untouched = (shape_files("train", 0)[0], shape_files("train", 1)[0],
                                                  shape_files("val", 0)[1], shape_files("test", 0)[0])
    originals = {name: (directory / name).read_bytes() for name in (overwritten, truncated, deleted)}
    before = (directory / overwritten).stat()
    with open(directory / overwritten, "r+b") as f:  # same size, same mtime: only a checksum sees it
        f.seek(len(originals[overwritten]) // 2)
        f.write(b"\xff" * 32)
    os.utime(directory / overwritten, ns=(before.st_atime_ns, before.st_mtime_ns))
    (directory / truncated).write_bytes(originals[truncated][:200])
    (directory / deleted).unlink()
    untouched_mtime = (directory / untouched).stat().st_mtime_ns
    build_rooms(SMOKE, copy)
    for name in (truncated, deleted):
        assert (directory / name).read_bytes() == originals[name], name
    assert (directory / overwritten).read_bytes() != originals[overwritten]  # a stat check cannot see it
    assert (directory / untouched).stat().st_mtime_ns == untouched_mtime
    build_rooms(dataclasses.replace(SMOKE, checksum_all=True), copy)
    assert (directory / overwritten).read_bytes() == originals[overwritten]
    (directory / MANIFEST).write_text("{broken")
    rebuilt = build_rooms(SMOKE, copy)
    assert np.array_equal(stored(rebuilt, "train", 0)["udf"], stored(rooms, "train", 0)["udf"])


# ----- ScanNet --------------------------------------------------------------------------------------------------


@needs_real
def test_scannet_arrays_on_the_shared_sample(tmp_path):
    dataset = build_scannet(ScanNetConfig(root=str(REAL), **SMALL), tmp_path)
    assert dataset.scenes == {"train": ["scene0000_00"], "val": [], "test": []}  # one scene, seeded split
    assert dataset.distances_to == "points" and dataset.mesh_path("train", 0) is None
    manifest = json.loads((dataset.directory / MANIFEST).read_text())
    assert manifest["distances_to"] == "points"
    raw = np.load(REAL / "scene0000_00_vert_all.npy")[:, :3].astype(np.float64)
    nyu = np.load(REAL / "scene0000_00_sem_label_all.npy")
    scene = stored(dataset, "train", 0)
    normalised = ((raw - scene["loc"]) / scene["scale"]).astype(np.float32)
    low, high = normalised.min(0), normalised.max(0)
    assert np.isclose((high - low).max(), 1.0, atol=1e-6) and np.allclose((low + high) / 2, 0, atol=1e-6)
    # every stored surface and input point is a scene vertex; its label is its NYU40 id mapped by hand
    for points, labels in ((scene["surface"], scene["surface_semantic"]), (scene["points"], scene["points_semantic"])):
        gap, vertex = KDTree(normalised).query(points, k=1)
        assert gap.max() == 0
        expected = [SCANNET20.index(BY_HAND[i]) if i in BY_HAND else -1 for i in nyu[vertex].tolist()]
        assert labels.tolist() == expected
    seen = set(nyu[KDTree(normalised).query(scene["surface"], k=1)[1]].tolist())
    assert {1, 2, 3, 4, 6, 7, 14} <= seen and {0, 22, 40} & seen  # mapped ids and ignored ones, both checked
    # queries: distance to (and label of) the nearest scene point, against brute force on a few
    item = dataset.split("train")[0]
    for q, d, s in zip(item[keys.QUERY][:20].numpy(), item[keys.UDF][:20].numpy(), item[keys.SEMANTIC][:20].numpy()):
        gaps = np.linalg.norm(normalised.astype(np.float64) - q, axis=1)
        assert np.isclose(d, gaps.min(), atol=1e-6)
        assert s == (SCANNET20.index(BY_HAND[nyu[gaps.argmin()]]) if nyu[gaps.argmin()] in BY_HAND else -1)


def test_scannet_raw_layout_and_lists(tmp_path):
    root = tmp_path / "scannet"
    for k, scene in enumerate(["scene0001_00", "scene0002_00", "scene0003_00"]):
        write_raw_scannet(root, scene, shift=float(k), binary_labels=k != 1)
    (root / "scannetv2_train.txt").write_text("scene0001_00\nscene0002_00\n")
    (root / "scannetv2_val.txt").write_text("scene0003_00\n")
    dataset = build_scannet(ScanNetConfig(root=str(root), val_fraction=0.5, **SMALL), tmp_path / "cache")
    assert dataset.distances_to == "mesh" and sorted(dataset.scenes["train"] + dataset.scenes["val"]) == [
        "scene0001_00", "scene0002_00"] and dataset.scenes["test"] == ["scene0003_00"]
    vertices, faces, ids = hand_scene()
    expected_faces = [SCANNET20.index(BY_HAND[i]) if i in BY_HAND else -1 for i in ids[faces[:, 0]]]
    scene = stored(dataset, "test", 0)
    assert scene["face_semantic"].tolist() == expected_faces  # floor, wall, chair; the ceiling strip ignored
    mesh = trimesh.load(dataset.mesh_path("test", 0), process=False)
    np.testing.assert_allclose(mesh.vertices, ((vertices + 2.0 - scene["loc"]) / scene["scale"]), atol=1e-6)
    item = dataset.split("test")[0]
    queries, udf, semantic = (item[k].numpy() for k in (keys.QUERY, keys.UDF, keys.SEMANTIC))
    check_labels_against_brute_force(queries[:40], udf[:40], semantic[:40], np.asarray(mesh.vertices),
                                     np.asarray(mesh.faces), scene["face_semantic"].astype(np.int64))
    # by hand: between the floor (z = 0) and the wall (x = 0), away from the box and the ceiling strip, the
    # nearer plane decides
    x, y, z = ((queries * scene["scale"]) + scene["loc"] - 2.0).T
    inside = (x > 0.01) & (x < 2.5) & (y > 0.01) & (y < 2.5) & (z > 0.01) & (z < 2.5) & (np.abs(x - z) > 1e-3)
    assert inside.sum() > 20
    assert (semantic[inside] == np.where(z[inside] < x[inside], SCANNET20.index("floor"),
                                         SCANNET20.index("wall"))).all()
    np.testing.assert_allclose(udf[inside], np.minimum(x, z)[inside] / scene["scale"], atol=1e-5)


def test_scannet_malformed_files(tmp_path):
    root = tmp_path / "scannet"
    folder = write_raw_scannet(root, "scene0001_00")
    mesh, labels = folder / "scene0001_00_vh_clean_2.ply", folder / "scene0001_00_vh_clean_2.labels.ply"
    good_mesh, good_labels = mesh.read_bytes(), labels.read_bytes()
    config = ScanNetConfig(root=str(root), **SMALL)
    mesh.write_bytes(good_mesh[:-20])  # truncated faces
    with raises_at(mesh):
        build_scannet(config, tmp_path / "a")
    mesh.write_bytes(good_mesh)
    vertices, faces, ids = hand_scene()
    labels.write_bytes(ply_data(vertices, faces, {"category": ids.astype(np.uint16)}))
    with raises_at(labels):  # no 'label' property
        build_scannet(config, tmp_path / "b")
    labels.write_bytes(ply_data(vertices[:-1], faces[:-2], {"label": ids[:-1].astype(np.uint16)}))
    with raises_at(labels):  # not the mesh's vertices
        build_scannet(config, tmp_path / "c")
    text = good_labels.decode("latin-1").split("\n")
    text[3] = "element vertex many"
    labels.write_bytes("\n".join(text).encode("latin-1"))
    with raises_at(labels, 4):
        build_scannet(config, tmp_path / "d")
    labels.write_bytes(good_labels)
    (root / "scannetv2_train.txt").write_text("scene0001_00\nscene0002_00 extra\n")
    (root / "scannetv2_val.txt").write_text("scene0001_00\n")
    with raises_at(root / "scannetv2_train.txt", 2):
        build_scannet(config, tmp_path / "e")
    arrays = tmp_path / "arrays"
    arrays.mkdir()
    np.save(arrays / "scene0009_00_vert_all.npy", np.zeros((10, 2), np.float32))
    np.save(arrays / "scene0009_00_sem_label_all.npy", np.zeros(10, np.uint32))
    with raises_at(arrays / "scene0009_00_vert_all.npy"):
        build_scannet(ScanNetConfig(root=str(arrays), **SMALL), tmp_path / "f")
    np.save(arrays / "scene0009_00_vert_all.npy", np.random.default_rng(0).random((10, 6), np.float32))
    np.save(arrays / "scene0009_00_sem_label_all.npy", np.zeros(9, np.uint32))
    with raises_at(arrays / "scene0009_00_sem_label_all.npy"):
        build_scannet(ScanNetConfig(root=str(arrays), **SMALL), tmp_path / "g")


def test_ascii_and_binary_ply_read_alike(tmp_path):
    vertices, faces, ids = hand_scene()
    extra = {"label": ids.astype(np.uint16), "quality": np.linspace(0, 1, len(ids)).astype(np.float32)}
    (tmp_path / "a.ply").write_bytes(ply_data(vertices, faces, extra, binary=True))
    (tmp_path / "b.ply").write_bytes(ply_data(vertices, faces, extra, binary=False))
    a, b = read_ply(tmp_path / "a.ply"), read_ply(tmp_path / "b.ply")
    assert np.array_equal(a.faces, faces) and np.array_equal(b.faces, faces)
    for ply in (a, b):
        np.testing.assert_allclose(ply.vertices(tmp_path / "a.ply"), vertices.astype(np.float32))
        assert ply.vertex["label"].tolist() == ids.tolist()
    # a quad is fanned into two triangles; a bad row names its line
    text = (tmp_path / "b.ply").read_text().replace(f"element face {len(faces)}", f"element face {len(faces) + 1}")
    (tmp_path / "c.ply").write_text(text + "4 0 1 2 3\n")
    assert read_ply(tmp_path / "c.ply").faces[-2:].tolist() == [[0, 1, 2], [0, 2, 3]]
    lines = (tmp_path / "b.ply").read_text().splitlines()
    lines[-1] = "3 0 1 x"
    (tmp_path / "d.ply").write_text("\n".join(lines) + "\n")
    with raises_at(tmp_path / "d.ply", len(lines)):
        read_ply(tmp_path / "d.ply")


# ----- SceneNN ---------------------------------------------------------------------------------------------------


def write_scenenn(root: Path, scene: str, nested: bool, ids: np.ndarray | None = None) -> Path:
    vertices, faces, nyu = hand_scene()
    path = root / scene / f"{scene}.ply" if nested else root / f"{scene}.ply"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(ply_data(vertices, faces, {"label": (nyu if ids is None else ids).astype(np.int32)},
                              binary=False))
    return path


def test_scenenn_default_and_custom_labels(tmp_path):
    root = tmp_path / "scenenn"
    for k in range(4):
        write_scenenn(root, f"{k:03d}", nested=k % 2 == 0)
    dataset = build_scenenn(SceneNNConfig(root=str(root), **SMALL), tmp_path / "cache")
    assert [len(dataset.scenes[s]) for s in SPLITS] == [2, 1, 1]  # 50/6/20 of 4 scenes, every split one at least
    assert dataset.info.semantic_classes == SCANNET20 and dataset.distances_to == "mesh"
    _, faces, nyu = hand_scene()
    expected = [SCANNET20.index(BY_HAND[i]) if i in BY_HAND else -1 for i in nyu[faces[:, 0]]]
    assert stored(dataset, "test", 0)["face_semantic"].tolist() == expected
    assert dataset.mesh_path("val", 0).is_file()
    custom = SceneNNConfig(root=str(root), classes=["ground", "thing"], label_map={"2": "ground", "5": "thing"},
                           **SMALL)
    relabelled = build_scenenn(custom, tmp_path / "cache")
    assert relabelled.info.semantic_classes == ("ground", "thing")
    assert relabelled.info.fingerprint != dataset.info.fingerprint
    assert stored(relabelled, "test", 0)["face_semantic"].tolist() == [
        {2: 0, 5: 1}.get(i, -1) for i in nyu[faces[:, 0]]]
    (root / "train.txt").write_text("000\n001\n002\n")
    (root / "test.txt").write_text("003\n")
    listed = build_scenenn(SceneNNConfig(root=str(root), val_fraction=0.34, **SMALL), tmp_path / "cache")
    assert listed.scenes["test"] == ["003"] and len(listed.scenes["val"]) == 1 and len(listed.scenes["train"]) == 2


def test_scenenn_malformed_files(tmp_path):
    root = tmp_path / "scenenn"
    path = write_scenenn(root, "005", nested=False)
    config = SceneNNConfig(root=str(root), **SMALL)
    with raises_at(path):
        build_scenenn(dataclasses.replace(config, label_property="nyu_class"), tmp_path / "a")
    lines = path.read_text().splitlines()
    header = lines.index("end_header")
    lines[header + 3] = "0.5 0.5"  # a vertex row with too few values
    path.write_text("\n".join(lines) + "\n")
    with raises_at(path, header + 4):
        build_scenenn(config, tmp_path / "b")


# ----- S3DIS --------------------------------------------------------------------------------------------------------


def write_s3dis_room(root: Path, area: int, room: str, objects: dict[str, np.ndarray]) -> Path:
    folder = root / f"Area_{area}" / room
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, points in objects.items():
        text = "\n".join(f"{x:.6f} {y:.6f} {z:.6f} 120 130 140" for x, y, z in points) + "\n"
        (folder / "Annotations" / f"{name}.txt").write_text(text)
        rows.append(text)
    (folder / f"{room}.txt").write_text("".join(rows))
    return folder


def room_objects(rng: np.random.Generator) -> dict[str, np.ndarray]:
    floor = np.c_[rng.uniform(0, 4, (300, 2)), np.zeros(300)]
    wall = np.c_[np.zeros(200), rng.uniform(0, 4, 200), rng.uniform(0, 3, 200)]
    chair = rng.uniform(0, 0.5, (80, 3)) + [2, 2, 0]
    stairs = rng.uniform(0, 0.5, (50, 3)) + [3, 0.5, 0]
    return {"floor_1": floor, "wall_1": wall, "chair_1": chair, "stairs_1": stairs}


def test_s3dis_rooms_and_labels(tmp_path):
    root = tmp_path / "s3dis"
    rng = np.random.default_rng(0)
    objects = {}
    for area, room in ((1, "office_1"), (1, "office_2"), (1, "hallway_1"), (6, "office_1")):
        objects[(area, room)] = room_objects(rng)
        write_s3dis_room(root, area, room, objects[(area, room)])
    config = S3DISConfig(root=str(root), train_areas=[1], test_areas=[6], val_fraction=0.3, **SMALL)
    dataset = build_s3dis(config, tmp_path / "cache")
    assert dataset.scenes["test"] == ["Area_6/office_1"] and len(dataset.scenes["val"]) == 1
    assert len(dataset.scenes["train"]) == 2 and dataset.distances_to == "points"
    assert dataset.mesh_path("test", 0) is None and dataset.info.semantic_classes == s3dis.CLASSES
    scene = stored(dataset, "test", 0)
    points = np.concatenate(list(objects[(6, "office_1")].values()))
    names = [n for n, p in objects[(6, "office_1")].items() for _ in p]
    normalised = ((np.round(points, 6) - scene["loc"]) / scene["scale"]).astype(np.float32)
    gap, nearest = KDTree(normalised).query(scene["surface"], k=1)
    assert gap.max() < 1e-6
    by_hand = {"floor_1": 1, "wall_1": 2, "chair_1": 8, "stairs_1": 12}  # stairs -> clutter
    assert scene["surface_semantic"].tolist() == [by_hand[names[i]] for i in nearest]
    ignoring = build_s3dis(dataclasses.replace(config, unknown_class="ignore"), tmp_path / "cache")
    assert ignoring.info.fingerprint != dataset.info.fingerprint
    scene = stored(ignoring, "test", 0)
    nearest = KDTree(normalised).query(scene["surface"], k=1)[1]
    assert scene["surface_semantic"].tolist() == [{**by_hand, "stairs_1": -1}[names[i]] for i in nearest]
    item = ignoring.split("test")[0]
    for q, d in zip(item[keys.QUERY][:20].numpy(), item[keys.UDF][:20].numpy()):
        assert np.isclose(d, np.linalg.norm(normalised.astype(np.float64) - q, axis=1).min(), atol=1e-6)
    # a corrupted cached scene is rebuilt
    npz = ignoring.directory / shape_files("test", 0)[0]
    original = npz.read_bytes()
    npz.write_bytes(original[:100])
    build_s3dis(dataclasses.replace(config, unknown_class="ignore"), tmp_path / "cache")
    assert npz.read_bytes() == original
    with pytest.raises(FileNotFoundError, match="Area_2"):
        build_s3dis(dataclasses.replace(config, train_areas=[1, 2]), tmp_path / "cache")


def test_s3dis_malformed_lines(tmp_path):
    root = tmp_path / "s3dis"
    rng = np.random.default_rng(1)
    for area in (1, 6):
        folder = write_s3dis_room(root, area, "office_1", room_objects(rng))
    chair = folder / "Annotations" / "chair_1.txt"
    lines = chair.read_text().splitlines()
    config = S3DISConfig(root=str(root), train_areas=[1], test_areas=[6], **SMALL)
    lines[2] = "1.0 2.0 3.0\x10 4 5 6"  # a control character, as in a known S3DIS file
    chair.write_text("\n".join(lines) + "\n")
    with raises_at(chair, 3):
        build_s3dis(config, tmp_path / "a")
    lines[2] = "1.0 2.0 3.0 4 5"
    chair.write_text("\n".join(lines) + "\n")
    with raises_at(chair, 3):
        build_s3dis(config, tmp_path / "b")
