"""Real-format dataset loaders (shapenet_onet, modelnet40, modelnet40_resampled, shapenetpart): the shared
samples of real data in ../shared/data/real, small files written here, and malformed files."""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import zipfile
from pathlib import Path

import igl
import numpy as np
import pytest
import torch
import trimesh
from harness_plugins.datasets import modelnet40, shapenet_onet, shapenetpart
from harness_plugins.datasets.modelnet40 import ModelNet40Config, ModelNet40ResampledConfig
from harness_plugins.datasets.modelnet40.dataset import build_meshes, build_resampled
from harness_plugins.datasets.modelnet40.off import read_off
from harness_plugins.datasets.shapenet_onet import ShapeNetONetConfig
from harness_plugins.datasets.shapenet_onet.binvox import read_binvox
from harness_plugins.datasets.shapenet_onet.dataset import build as build_onet
from harness_plugins.datasets.shapenetpart import ShapeNetPartConfig, ShapeNetPartImplicitConfig
from harness_plugins.datasets.shapenetpart.dataset import build as build_part
from harness_plugins.datasets.shapenetpart.dataset import build_implicit as build_part_implicit
from PIL import Image
from pykdtree.kdtree import KDTree

from harness import data as keys
from harness import datacache
from harness.datacache import V2_TO_ONET, DataFileError, read_arrays, shape_files, split_by_fractions
from harness.registry import default_registry
from harness.specs import Kind

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"the shared real-data samples are not at {REAL}")

SMALL = {"n_occupancy": 2000, "query_points": 256, "eval_surface_points": 500, "iou_points": 500, "workers": 1}
SPECS = {spec.name: spec for spec in (shapenet_onet.SPEC, modelnet40.SPEC, modelnet40.RESAMPLED_SPEC, shapenetpart.SPEC)}
TABLE, BENCH = "04379243", "02828884"
SIMPLE_TABLE = "1a00aa6b75362cc5b324368d54a7416f"  # a closed 36-triangle table: its winding number is reliable


def shapes(item: dict) -> dict:
    return {key: (tuple(value.shape), value.dtype) for key, value in item.items()}


def raises_at(path: Path, line: int | None = None):
    """pytest.raises for a DataFileError naming ``path`` (and ``line``)."""
    where = f"{path}:{line}:" if line is not None else f"{path}:"
    return pytest.raises(DataFileError, match=f"^{where}".replace(".", r"\."))


# ----- specs and configuration -----------------------------------------------------------------------------


def test_specs_registered_and_configs_valid():
    registry = default_registry()
    assert set(SPECS) <= set(registry.names(Kind.DATASET))
    for spec in SPECS.values():
        assert callable(spec.load()) and not spec.capabilities.synthetic
        for overrides in spec.profiles.values():
            spec.config(**overrides).validate()
        spec.config().validate()
    assert SPECS["shapenet_onet"].capabilities.modalities == ("points", "image")
    assert SPECS["modelnet40_resampled"].capabilities.targets == ("label",)
    assert SPECS["shapenetpart"].capabilities.targets == ("part", "label")
    implicit = shapenetpart.IMPLICIT_SPEC
    assert implicit.name in registry.names(Kind.DATASET) and callable(implicit.load())
    assert implicit.capabilities.targets == ("occupancy", "part", "label")
    for overrides in [{}, *implicit.profiles.values()]:
        implicit.config(mesh_root="/meshes", **overrides).validate()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_missing_root_names_dataset_key_path_and_layout(name, tmp_path):
    spec = SPECS[name]
    with pytest.raises(FileNotFoundError, match=f"{name}: .*dataset.root.*expected layout") as error:
        spec.build(spec.config(), tmp_path)
    absent = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match=re.escape(f"dataset.root='{absent}'") + ".*expected layout"):
        spec.build(spec.config(root=str(absent)), tmp_path)
    assert "<root>" in str(error.value)


@pytest.mark.parametrize("spec, overrides, field", [
    ("modelnet40", {"val_fraction": 1.0}, "val_fraction"),
    ("modelnet40", {"iou_points": 3000}, "iou_points"),
    ("modelnet40_resampled", {"sampling": "fps"}, "sampling"),
    ("modelnet40_resampled", {"input_points": True}, "input_points"),
    ("shapenet_onet", {"occupancy_from": ["voxels", "guess"]}, "occupancy_from"),
    ("shapenet_onet", {"split_fractions": {"train": 1.0, "test": 0.5}}, "split_fractions"),
    ("shapenetpart", {"categories": ["Chair", "Spaceship"]}, "categories"),
])
def test_bad_config_names_the_field(spec, overrides, field, tmp_path):
    config = SPECS[spec].config(root=str(tmp_path), **{k: v for k, v in SMALL.items()
                                                         if k in {f.name for f in dataclasses.fields(SPECS[spec].config)}})
    with pytest.raises(ValueError, match=field):
        SPECS[spec].build(dataclasses.replace(config, **overrides), tmp_path)


def test_split_by_fractions_is_deterministic_and_fills_small_splits():
    ids = [f"m{i}" for i in range(5)]
    parts = split_by_fractions(ids, {"train": 0.7, "val": 0.1, "test": 0.2}, seed=0)
    assert [len(p) for p in parts.values()] == [3, 1, 1] and sorted(i for p in parts.values() for i in p) == ids
    assert parts == split_by_fractions(list(reversed(ids)), {"train": 0.7, "val": 0.1, "test": 0.2}, seed=0)
    assert parts != split_by_fractions(ids, {"train": 0.7, "val": 0.1, "test": 0.2}, seed=1)


def test_data_file_errors_survive_pickling():
    """Errors raised in cache-building worker processes reach the parent intact."""
    error = pickle.loads(pickle.dumps(DataFileError("/x/y.off", "bad", 3)))
    assert str(error) == "/x/y.off:3: bad" and error.line == 3


def test_read_arrays_remembers_files_within_its_budget_and_rereads_rewritten_ones(tmp_path, monkeypatch):
    """Items re-read their shape's npz every epoch: after the first read the arrays come from memory (the same
    read-only arrays), a rewritten file is read afresh, and the least recently used files go past the budget."""
    monkeypatch.setattr(datacache, "_array_memo", datacache.OrderedDict())
    monkeypatch.setattr(datacache, "_array_memo_bytes", 0)
    monkeypatch.setattr(datacache, "ARRAY_MEMO_BYTES", 2 * 800)  # two files of 800 bytes
    paths = [tmp_path / f"{i}.npz" for i in range(3)]
    for i, path in enumerate(paths):
        np.savez(path, a=np.full(100, i, dtype=np.float64), b=np.arange(3))
    first = read_arrays(paths[0], ["a", "missing"])
    assert set(first) == {"a"} and not first["a"].flags.writeable and (first["a"] == 0).all()
    assert read_arrays(paths[0], ["a", "missing"])["a"] is first["a"]
    np.savez(paths[0], a=np.full(100, 7.0))
    os.utime(paths[0], ns=(1, 1))  # a different mtime, as a regenerated file has
    assert (read_arrays(paths[0], ["a"])["a"] == 7).all()
    read_arrays(paths[1], ["a"])
    read_arrays(paths[2], ["a"])  # three files of 800 bytes: the oldest (paths[0]) is forgotten
    assert datacache._array_memo_bytes == 1600 and len(datacache._array_memo) == 2
    assert str(paths[0]) not in {key[0] for key in datacache._array_memo}


# ----- OFF meshes and modelnet40 ---------------------------------------------------------------------------

CUBE_VERTICES = [(-1, -1, -1), (1, -1, -1), (1, 1, -1), (-1, 1, -1), (-1, -1, 1), (1, -1, 1), (1, 1, 1), (-1, 1, 1)]
CUBE_QUADS = [(0, 3, 2, 1), (4, 5, 6, 7), (0, 1, 5, 4), (3, 7, 6, 2), (0, 4, 7, 3), (1, 2, 6, 5)]  # outward


def cube_off(stretch: float = 1.0, one_line_header: bool = True) -> str:
    header = "OFF8 6 0\n" if one_line_header else "OFF\n# a cube\n8 6 0\n"
    vertices = "".join(f"{x * stretch} {y} {z}\n" for x, y, z in CUBE_VERTICES)
    return header + vertices + "".join("4 " + " ".join(map(str, q)) + "\n" for q in CUBE_QUADS)


@needs_real
def test_off_files_of_the_shared_sample():
    for name, counts in (("bathtub_0001", (3514, 3546)), ("bathtub_0002", (700, 664)), ("bathtub_0003", (14963, 19985))):
        path = REAL / "modelnet10_off" / "bathtub" / "train" / f"{name}.off"
        vertices, faces = read_off(path)
        assert (len(vertices), len(faces)) == counts  # all triangles
        assert np.allclose(vertices[0], [float(v) for v in path.read_text().splitlines()[2].split()])
    vertices, faces = read_off(REAL / "meshes" / "bunny.off")
    assert faces.max() == len(vertices) - 1 and trimesh.Trimesh(vertices, faces).is_watertight


def test_off_headers_and_polygons(tmp_path):
    one_line, two_lines = tmp_path / "a.off", tmp_path / "b.off"
    one_line.write_text(cube_off(one_line_header=True))
    two_lines.write_text(cube_off(one_line_header=False))
    (v1, f1), (v2, f2) = read_off(one_line), read_off(two_lines)
    assert v1.shape == (8, 3) and f1.shape == (12, 3) and np.array_equal(v1, v2) and np.array_equal(f1, f2)
    mesh = trimesh.Trimesh(v1, f1)
    assert mesh.is_watertight and mesh.volume == pytest.approx(8.0)  # quads fan-triangulated, outward


@pytest.mark.parametrize("text, line, message", [
    ("OFF8 6 0\n" + "0 0 0\n" * 8 + "3 0 1 2\n" * 5, 14, "truncated"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n3 0 1 2\n", 7, "beyond"),
    ("OFF\n3 1 0\n0 0 0\n1 0\n0 1 0\n3 0 1 2\n", 4, "expected 3 values"),
    ("OFF\n3 1 0\n0 0 0\n1 x 0\n0 1 0\n3 0 1 2\n", 4, "not a number"),
    ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", 6, "out of range"),
    ("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n", 2, "empty mesh"),
    ("PLY\n3 1 0\n", 1, "not an OFF file"),
    ("OFF\n3 1\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", 2, "expected 3 values"),
])
def test_malformed_off_names_file_and_line(text, line, message, tmp_path):
    path = tmp_path / "bad.off"
    path.write_text(text)
    with raises_at(path, line) as error:
        read_off(path)
    assert message in str(error.value)


def write_modelnet(root: Path) -> None:
    """Two classes of boxes: cubes and slabs (twice as long in x), five training and one test shape each."""
    for name, stretch in (("cube", 1.0), ("slab", 2.0)):
        for split, numbers in (("train", range(1, 6)), ("test", [6])):
            for number in numbers:
                path = root / name / split / f"{name}_{number:04d}.off"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(cube_off(stretch, one_line_header=number % 2 == 0))


@pytest.fixture(scope="module")
def boxes(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("modelnet")
    write_modelnet(root)
    config = ModelNet40Config(root=str(root), n_surface=2000, input_points=100, **SMALL)
    return build_meshes(config, tmp_path_factory.mktemp("cache")), config


def test_modelnet40_meshes_sampled_and_exact_inside(boxes):
    dataset, _ = boxes
    info = dataset.info
    assert info.classes == ("cube", "slab") and info.targets == ("occupancy", "label")
    assert [len(dataset.split(s)) for s in keys.SPLITS] == [8, 2, 2]  # one of five per class carved for val
    names = {split: [path.name for path, _ in entries] for split, entries in dataset.entries.items()}
    assert not set(names["train"]) & set(names["val"]) and names["test"] == ["cube_0006.off", "slab_0006.off"]
    for split in keys.SPLITS:
        for index in range(len(dataset.split(split))):
            item = dataset.split(split)[index]
            label = int(item[keys.LABEL])
            assert label == dataset.entries[split][index][1]
            half = np.array([0.5, 0.25, 0.25]) if label == 1 else np.full(3, 0.5)  # ONet-normalised box
            for query, occupancy in ((item[keys.QUERY], item[keys.OCCUPANCY]),
                                     (item.get("iou_query"), item.get("iou_occupancy"))):
                if query is None:
                    continue
                margin = (np.abs(query.numpy()) / half).max(1)
                far = np.abs(margin - 1) > 1e-3
                assert np.array_equal(occupancy.numpy()[far] == 1, margin[far] < 1)
            surface = dataset.split(split).shape(index)["surface"]  # stored (training items leave it out)
            assert np.isclose(np.abs(surface.astype(np.float32)) / half, 1, atol=2e-3).any(1).all()
            mesh = trimesh.load(dataset.mesh_path(split, index), process=False)
            assert np.allclose(mesh.bounds, [-half, half])
    item = dataset.split("val")[0]
    assert shapes(item) == {
        keys.POINTS: ((100, 3), torch.float32), keys.QUERY: ((256, 3), torch.float32),
        keys.OCCUPANCY: ((256,), torch.float32), keys.LABEL: ((), torch.int64),
        keys.SURFACE: ((500, 3), torch.float32), keys.NORMALS: ((500, 3), torch.float32),
        keys.INDEX: ((), torch.int64), "iou_query": ((500, 3), torch.float32),
        "iou_occupancy": ((500,), torch.float32)}
    assert all(torch.equal(item[k], dataset.split("val")[0][k]) for k in item)
    with pytest.raises(KeyError, match="nope"):
        dataset.mesh_path("nope", 0)
    with pytest.raises(IndexError, match="val has 2 shapes"):
        dataset.mesh_path("val", 2)


def test_modelnet40_fingerprint_and_cache_repair(boxes, tmp_path):
    dataset, config = boxes
    again = build_meshes(config, dataset.directory.parent.parent)
    assert again.info.fingerprint == dataset.info.fingerprint
    for change in ({"val_fraction": 0.3}, {"n_surface": 2001}, {"classes": ["slab"]}, {"seed": 1}):
        assert build_meshes(dataclasses.replace(config, **change), tmp_path).info.fingerprint != dataset.info.fingerprint
    for change in ({"input_points": 50}, {"query_points": 100}, {"workers": 2}):
        assert build_meshes(dataclasses.replace(config, **change), tmp_path).info.fingerprint == dataset.info.fingerprint
    root = Path(config.root)
    cached = dataset.directory / "train" / "000001.npz"
    original = cached.read_bytes()
    cached.unlink()
    assert build_meshes(config, dataset.directory.parent.parent).info.fingerprint == dataset.info.fingerprint
    assert cached.read_bytes() == original  # regenerated identically
    source = root / "cube" / "train" / "cube_0001.off"
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    try:
        assert build_meshes(config, tmp_path).info.fingerprint != dataset.info.fingerprint  # a changed file
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_modelnet40_unknown_class_and_empty_mesh(tmp_path):
    write_modelnet(tmp_path / "data")
    config = ModelNet40Config(root=str(tmp_path / "data"), n_surface=2000, **SMALL)
    with pytest.raises(ValueError, match=r"unknown classes \['chair'\].*\['cube', 'slab'\]"):
        build_meshes(dataclasses.replace(config, classes=["chair"]), tmp_path)
    empty = tmp_path / "data" / "slab" / "test" / "slab_0006.off"
    empty.write_text("OFF\n0 0 0\n")
    with raises_at(empty, 2):
        build_meshes(config, tmp_path)


@needs_real
def test_modelnet40_on_the_shared_meshes(tmp_path):
    config = ModelNet40Config(root=str(REAL / "modelnet10_off"), n_surface=2000, **SMALL)
    dataset = build_meshes(config, tmp_path)
    assert dataset.info.classes == ("bathtub",) and [len(dataset.split(s)) for s in keys.SPLITS] == [2, 1, 0]
    for split, index in (("train", 0), ("train", 1), ("val", 0)):
        source, _ = dataset.entries[split][index]
        mesh = trimesh.load(dataset.mesh_path(split, index), process=False)
        _, faces = read_off(source)
        assert len(mesh.faces) <= len(faces) and np.ptp(mesh.vertices, axis=0).max() == pytest.approx(1, abs=1e-6)
        assert mesh.is_winding_consistent
        surface = dataset.split(split).shape(index)["surface"]  # stored (training items leave it out)
        distance = np.sqrt(igl.point_mesh_squared_distance(surface.astype(np.float64),
                                                           mesh.vertices, mesh.faces)[0])
        assert distance.max() < 1e-3  # surface samples lie on the normalised mesh (float16 storage)


# ----- modelnet40_resampled --------------------------------------------------------------------------------


@needs_real
def test_resampled_on_the_shared_sample():
    root = REAL / "modelnet40_normal_resampled"
    with pytest.raises(FileNotFoundError, match="skip_missing"):
        build_resampled(ModelNet40ResampledConfig(root=str(root)), None)
    dataset = build_resampled(ModelNet40ResampledConfig(root=str(root), skip_missing=True), None)
    assert len(dataset.info.classes) == 40 and dataset.info.classes[:2] == ("airplane", "bathtub")
    test = dataset.split("test")
    assert len(test) == 10 and len(dataset.split("train")) == 0
    for index in (0, 9):
        item = test[index]
        path, label = dataset.entries["test"][index]
        assert int(item[keys.LABEL]) == label == (0 if path.name.startswith("airplane") else 1)
        raw = np.loadtxt(path, delimiter=",")
        assert raw.shape == (10_000, 6)
        expected = raw[:1024, :3] - raw[:1024, :3].mean(0)
        assert np.allclose(item[keys.POINTS].numpy(), expected / np.linalg.norm(expected, axis=1).max(), atol=1e-6)
        assert np.allclose(item[keys.NORMALS].numpy(), raw[:1024, 3:], atol=1e-6)
        assert np.allclose(np.linalg.norm(raw[:, 3:], axis=1), 1, atol=0.01)
    jittered = build_resampled(ModelNet40ResampledConfig(root=str(root), skip_missing=True, jitter=0.02), None)
    noise = jittered.split("test")[0][keys.POINTS] - test[0][keys.POINTS]
    assert 0.018 < noise.std().item() < 0.022
    assert torch.equal(jittered.split("test")[0][keys.POINTS], jittered.split("test")[0][keys.POINTS])


def write_resampled(root: Path, points: int = 40) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "modelnet40_shape_names.txt").write_text("cone\nnight_stand\n")
    ids = {"train": [f"{c}_{i:04d}" for c in ("cone", "night_stand") for i in range(1, 5)],
           "test": ["cone_0005", "night_stand_0005"]}
    rng = np.random.default_rng(0)
    for split, names in ids.items():
        (root / f"modelnet40_{split}.txt").write_text("\n".join(names) + "\n")
        for name in names:
            path = root / name.rpartition("_")[0] / f"{name}.txt"
            path.parent.mkdir(exist_ok=True)
            np.savetxt(path, rng.normal(size=(points, 6)), delimiter=",", fmt="%.6f")


def test_resampled_written_files_and_random_sampling(tmp_path):
    write_resampled(tmp_path)
    config = ModelNet40ResampledConfig(root=str(tmp_path), input_points=32, sampling="random", normalize=False)
    dataset = build_resampled(config, None)
    assert dataset.info.classes == ("cone", "night_stand")
    assert [len(dataset.split(s)) for s in keys.SPLITS] == [6, 2, 2]
    item = dataset.split("train")[3]
    assert shapes(item) == {keys.POINTS: ((32, 3), torch.float32), keys.NORMALS: ((32, 3), torch.float32),
                            keys.LABEL: ((), torch.int64), keys.INDEX: ((), torch.int64)}
    raw = np.loadtxt(dataset.entries["train"][3][0], delimiter=",")
    assert KDTree(raw[:, :3]).query(item[keys.POINTS].numpy().astype(np.float64))[0].max() < 1e-6  # rows of it
    assert not torch.equal(item[keys.POINTS], dataset.split("train")[3][keys.POINTS])  # fresh draws in training
    assert torch.equal(dataset.split("val")[1][keys.POINTS], dataset.split("val")[1][keys.POINTS])
    assert build_resampled(dataclasses.replace(config, classes=["night_stand"]), None).info.classes == ("night_stand",)


@pytest.mark.parametrize("line_text, message", [
    ("0.1,0.2,0.3,0.0,1.0", "expected 6 values, found 5"),  # truncated
    ("0.1,0.2,0.3,0.0,1.0,0.0,7", "expected 6 values, found 7"),
    ("0.1,0.2,abc,0.0,1.0,0.0", "not a number: 'abc'"),
    ("0.1,0.2,nan,0.0,1.0,0.0", "not a finite number"),
])
def test_resampled_malformed_line_names_file_and_line(line_text, message, tmp_path):
    write_resampled(tmp_path)
    dataset = build_resampled(ModelNet40ResampledConfig(root=str(tmp_path), input_points=16), None)
    path = dataset.entries["test"][0][0]
    lines = path.read_text().splitlines()
    lines[6] = line_text
    path.write_text("\n".join(lines) + "\n")
    with raises_at(path, 7) as error:
        dataset.split("test")[0]
    assert message in str(error.value)


def test_resampled_list_errors(tmp_path):
    write_resampled(tmp_path)
    test_list = tmp_path / "modelnet40_test.txt"
    test_list.write_text("cone_0005\nsofa_0001\n")
    with raises_at(test_list, 2) as error:
        build_resampled(ModelNet40ResampledConfig(root=str(tmp_path)), None)
    assert "'sofa'" in str(error.value)
    write_resampled(tmp_path, points=10)
    with raises_at(tmp_path / "cone" / "cone_0005.txt"):
        build_resampled(ModelNet40ResampledConfig(root=str(tmp_path), input_points=16), None).split("test")[0]


# ----- shapenetpart ----------------------------------------------------------------------------------------


@needs_real
def test_shapenetpart_on_the_shared_sample():
    root = REAL / "shapenetpart"
    dataset = build_part(ShapeNetPartConfig(root=str(root)), None)
    info = dataset.info
    assert len(info.classes) == 16 and len(info.parts) == 50
    assert [info.parts_per_class[c] for c in ("Airplane", "Chair", "Mug", "Table")] == [
        (0, 1, 2, 3), (12, 13, 14, 15), (36, 37), (47, 48, 49)]
    categories = []
    for split in keys.SPLITS:
        for index in range(len(dataset.split(split))):
            item = dataset.split(split)[index]
            category = info.classes[int(item[keys.LABEL])]
            categories.append(category)
            assert shapes(item) == {keys.POINTS: ((2048, 3), torch.float32), keys.QUERY: ((2048, 3), torch.float32),
                                    keys.PART: ((2048,), torch.int64), keys.POINTS_PART: ((2048,), torch.int64),
                                    keys.NORMALS: ((2048, 3), torch.float32),
                                    keys.LABEL: ((), torch.int64), keys.INDEX: ((), torch.int64)}
            assert set(item[keys.PART].tolist()) <= set(info.parts_per_class[category])
            assert torch.equal(item[keys.POINTS], item[keys.QUERY])
            assert item[keys.POINTS].norm(dim=1).max().item() == pytest.approx(1, abs=1e-5)
    assert sorted(categories) == ["Chair", "Mug", "Table"]
    chair = build_part(ShapeNetPartConfig(root=str(root), categories=["Chair"]), None)
    assert chair.info.classes == ("Chair",) and len(chair.split("train")) == 1
    moved = build_part(ShapeNetPartConfig(root=str(root), split_fractions={"train": 0.5, "val": 0.2, "test": 0.3}), None)
    assert moved.info.fingerprint != info.fingerprint  # the fallback split is part of the identity


def write_part_benchmark(root: Path, official: bool) -> Path:
    data = root / shapenetpart.config.BENCHMARK
    rng = np.random.default_rng(0)
    entries = []
    for synset, labels in (("03001627", (12, 15)), ("03797390", (36, 37))):
        (data / synset).mkdir(parents=True)
        for number in range(3):
            shape_id = f"{synset[-3:]}{number:05d}"
            table = np.column_stack([rng.normal(size=(60, 6)), rng.integers(labels[0], labels[1] + 1, 60)])
            np.savetxt(data / synset / f"{shape_id}.txt", table, fmt="%.5f")
            entries.append(f"shape_data/{synset}/{shape_id}")
    if official:
        (data / "train_test_split").mkdir()
        for split, chosen in (("train", entries[0::3] + entries[1::3]), ("val", entries[2:3]), ("test", entries[5:])):
            (data / "train_test_split" / f"shuffled_{split}_file_list.json").write_text(json.dumps(chosen))
    return data


def test_shapenetpart_official_lists_and_sampling_with_replacement(tmp_path):
    data = write_part_benchmark(tmp_path, official=True)
    dataset = build_part(ShapeNetPartConfig(root=str(tmp_path), categories=["Mug", "Chair"], input_points=100), None)
    assert dataset.info.classes == ("Mug", "Chair") and [len(dataset.split(s)) for s in keys.SPLITS] == [4, 1, 1]
    assert dataset.entries["val"] == [(data / "03001627" / "62700002.txt", 1)]
    item = dataset.split("val")[0]
    assert item[keys.POINTS].shape == (100, 3)  # 60 points drawn with replacement
    assert set(item[keys.PART].tolist()) <= {12, 13, 14, 15}
    listing = data / "train_test_split" / "shuffled_test_file_list.json"
    listing.write_text(json.dumps(["shape_data/02691156/x", "shape_data/12345678/y"]))
    with raises_at(listing) as error:
        build_part(ShapeNetPartConfig(root=str(tmp_path)), None)
    assert "unknown synset 12345678" in str(error.value)


def test_shapenetpart_malformed_files(tmp_path):
    data = write_part_benchmark(tmp_path, official=False)
    config = ShapeNetPartConfig(root=str(data), input_points=16)  # the benchmark folder itself works too
    path = data / "03797390" / "39000000.txt"
    lines = path.read_text().splitlines()
    lines[4] = lines[4].rsplit(" ", 1)[0] + " 12.00000"  # a chair part on a mug
    path.write_text("\n".join(lines) + "\n")
    dataset = build_part(config, None)
    split, index = next((s, i) for s, entries in dataset.entries.items() for i, (p, _) in enumerate(entries) if p == path)
    with raises_at(path, 5) as error:
        dataset.split(split)[index]
    assert "36..37" in str(error.value)
    lines[4] = "0.1 0.2 0.3 0.0 1.0 0.0"
    path.write_text("\n".join(lines) + "\n")
    with raises_at(path, 5):
        dataset.split(split)[index]
    (data / "99999999").mkdir()
    with raises_at(data / "99999999"):
        build_part(config, None)


# a table in the clouds' (v1) frame: a top (part 47) on a leg (part 48), different extents along x and z
TOP = ((-0.5, 0.1, -0.3), (0.5, 0.2, 0.3))
LEG = ((-0.1, -0.5, -0.1), (0.1, 0.1, 0.1))


def write_part_meshes(root: Path, mesh_root: Path, models: int = 4, with_mesh: int = 3) -> Path:
    """ShapeNetPart-style table clouds sampled from TOP and LEG, and their mesh in ShapeNetCore.v2's frame
    (a quarter turn, another scale and offset) for the first ``with_mesh`` of them."""
    boxes = [trimesh.creation.box(bounds=np.array(bounds)) for bounds in (TOP, LEG)]
    points, faces = zip(*(box.sample(1500, return_index=True, seed=k) for k, box in enumerate(boxes)))
    table = np.column_stack([np.concatenate(points), np.concatenate([b.face_normals[f] for b, f in zip(boxes, faces)]),
                             np.repeat([47, 48], 1500)])
    mesh = trimesh.util.concatenate(boxes)
    v2 = trimesh.Trimesh(mesh.vertices @ V2_TO_ONET * 0.7 + (0.2, -0.1, 0.3), mesh.faces, process=False)
    data = root / shapenetpart.config.BENCHMARK
    (data / TABLE).mkdir(parents=True)
    for number in range(models):
        shape_id = f"table{number}"
        np.savetxt(data / TABLE / f"{shape_id}.txt", table, fmt="%.6f %.6f %.6f %.6f %.6f %.6f %d")
        if number < with_mesh:
            (mesh_root / TABLE / shape_id / "models").mkdir(parents=True)
            v2.export(mesh_root / TABLE / shape_id / "models" / "model_normalized.obj")
    return data


def in_box(points: np.ndarray, bounds, margin: float) -> np.ndarray:
    """Whether each point lies in the box ``bounds`` shrunk by ``margin`` (grown where negative)."""
    return np.all((points > np.array(bounds[0]) + margin) & (points < np.array(bounds[1]) - margin), axis=1)


def test_shapenetpart_implicit_occupancy_and_voronoi_parts(tmp_path):
    mesh_root = tmp_path / "v2"
    data = write_part_meshes(tmp_path / "part", mesh_root)
    config = ShapeNetPartImplicitConfig(root=str(tmp_path / "part"), mesh_root=str(mesh_root), categories=["Table"],
                                        input_points=100, n_occupancy=4000, query_points=256, eval_surface_points=500,
                                        iou_points=1000, workers=1)
    dataset = build_part_implicit(config, tmp_path / "cache")
    assert dataset.info.targets == ("occupancy", "part", "label") == shapenetpart.IMPLICIT_SPEC.capabilities.targets
    assert sum(len(dataset.split(s)) for s in keys.SPLITS) == 3  # table3 has no mesh: left out
    shift = np.array([0.0, 0.15, 0.0])  # the cloud's box normalisation: its longest side (x) is already 1
    for split in keys.SPLITS:
        for index in range(len(dataset.split(split))):
            stored = dict(np.load(dataset.directory / shape_files(split, index)[0]))
            points = stored["occ_points"].astype(np.float64) - shift
            occupancy, part = stored["occupancy"], stored["occ_part"]
            assert float(stored["frame_residual"]) < 1e-3
            outside = ~in_box(points, ((-0.52, -0.52, -0.32), (0.52, 0.22, 0.32)), 0) | (
                ~in_box(points, TOP, -0.02) & ~in_box(points, LEG, -0.02))
            top, leg = in_box(points, TOP, 0.02), in_box(points, LEG, 0.02)
            assert top.sum() > 50 and leg.sum() > 10 and outside.sum() > 1000
            assert occupancy[top].all() and occupancy[leg].all() and not occupancy[outside].any()
            # nearer their own part's samples than the interface, where both parts' samples lie
            assert (part[top & (points[:, 1] > 0.16)] == 47).all() and (part[leg & (points[:, 1] < -0.1)] == 48).all()
            assert (part[~occupancy] == keys.IGNORE_INDEX).all() and (part[occupancy] >= 47).all()
    item = dataset.split("val")[0]
    assert shapes(item) == {
        keys.POINTS: ((100, 3), torch.float32), keys.POINTS_PART: ((100,), torch.int64),
        keys.QUERY: ((256, 3), torch.float32), keys.OCCUPANCY: ((256,), torch.float32), keys.PART: ((256,), torch.int64),
        keys.IOU_QUERY: ((1000, 3), torch.float32), keys.IOU_OCCUPANCY: ((1000,), torch.float32),
        keys.SURFACE: ((500, 3), torch.float32), keys.NORMALS: ((500, 3), torch.float32),
        keys.SURFACE_PART: ((500,), torch.int64), keys.LABEL: ((), torch.int64), keys.INDEX: ((), torch.int64)}
    assert torch.equal(item[keys.PART] >= 0, item[keys.OCCUPANCY] > 0)
    assert set(item[keys.POINTS_PART].tolist()) == {47, 48}
    assert trimesh.load(dataset.mesh_path("val", 0), process=False).bounds[1] == pytest.approx(TOP[1] + shift, abs=1e-4)
    # the per-point task is unchanged without mesh_root; with it, shapenetpart serves the implicit items too
    plain = build_part(ShapeNetPartConfig(root=str(data)), None)
    assert plain.info.targets == ("part", "label") and plain.mesh_path("train", 0) is None
    same = build_part(ShapeNetPartConfig(**dataclasses.asdict(config)), tmp_path / "cache")
    assert same.info.targets == ("occupancy", "part", "label") and same.split("val")[0].keys() == item.keys()
    # the meshes are part of the identity
    obj = mesh_root / TABLE / "table0" / "models" / "model_normalized.obj"
    obj.write_text(obj.read_text() + "# edited\n")
    assert build_part_implicit(config, tmp_path / "cache").info.fingerprint != dataset.info.fingerprint


def test_shapenetpart_implicit_needs_meshes(tmp_path):
    mesh_root = tmp_path / "v2"
    write_part_meshes(tmp_path / "part", mesh_root, models=3, with_mesh=2)
    config = ShapeNetPartImplicitConfig(root=str(tmp_path / "part"), categories=["Table"], n_occupancy=500,
                                        query_points=100, iou_points=100, workers=1)
    with pytest.raises(ValueError, match="dataset.mesh_root"):
        build_part_implicit(config, tmp_path)
    strict = dataclasses.replace(config, mesh_root=str(mesh_root), skip_missing_meshes=False)
    missing = mesh_root / TABLE / "table2" / "models" / "model_normalized.obj"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        build_part_implicit(strict, tmp_path)
    with pytest.raises(FileNotFoundError, match="no shape has a mesh in dataset.mesh_root"):
        build_part_implicit(dataclasses.replace(config, mesh_root=str(tmp_path)), tmp_path)


# ----- shapenet_onet ---------------------------------------------------------------------------------------


def binvox_bytes(occupied: np.ndarray, translate=(0.0, 0.0, 0.0), scale: float = 1.0) -> bytes:
    """Encode a [x, y, z] grid as binvox: y fastest, then z, then x; runs of at most 255."""
    order = occupied.transpose(0, 2, 1).ravel().astype(np.uint8)
    runs = bytearray()
    start = 0
    while start < len(order):
        end = start
        while end < len(order) and order[end] == order[start] and end - start < 255:
            end += 1
        runs += bytes([order[start], end - start])
        start = end
    size = occupied.shape[0]
    header = f"#binvox 1\ndim {size} {size} {size}\ntranslate {' '.join(map(str, translate))}\nscale {scale}\ndata\n"
    return header.encode() + bytes(runs)


def test_binvox_order_and_lookup(tmp_path):
    grid = np.zeros((4, 4, 4), dtype=bool)
    grid[1, 2, 3] = True
    grid[3, 0, 0] = True
    path = tmp_path / "tiny.binvox"
    path.write_bytes(binvox_bytes(grid, translate=(-1.0, 0.0, 2.0), scale=2.0))
    # y runs fastest, then z, then x: voxel (1, 2, 3) is decoded position 1*16 + 3*4 + 2
    raw = np.repeat(np.frombuffer(path.read_bytes().split(b"data\n", 1)[1], np.uint8)[0::2],
                    np.frombuffer(path.read_bytes().split(b"data\n", 1)[1], np.uint8)[1::2])
    assert np.flatnonzero(raw).tolist() == [1 * 16 + 3 * 4 + 2, 3 * 16]
    voxels = read_binvox(path)
    assert np.array_equal(voxels.occupied, grid) and voxels.scale == 2.0
    centre = np.array([-1.0, 0.0, 2.0]) + (np.array([1, 2, 3]) + 0.5) * 0.5
    assert voxels.contains(np.array([centre, centre + [0.5, 0, 0], [-5.0, 0, 0]])).tolist() == [True, False, False]


@pytest.mark.parametrize("mangle, line", [
    (lambda b: b.replace(b"#binvox 1", b"#voxels 1"), 1),
    (lambda b: b.replace(b"scale 1.0", b"scale x"), 4),
    (lambda b: b[:-1], None),  # truncated run-length data
    (lambda b: b.replace(b"dim 4 4 4", b"dim 4 4 2"), None),
])
def test_malformed_binvox(mangle, line, tmp_path):
    path = tmp_path / "bad.binvox"
    path.write_bytes(mangle(binvox_bytes(np.eye(4, dtype=bool)[:, :, None].repeat(4, 2))))
    with raises_at(path, line):
        read_binvox(path)


def sphere_cloud(rng: np.random.Generator, count: int, radius: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
    normals = rng.normal(size=(count, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return (normals * radius).astype(np.float16), normals.astype(np.float16)


def write_onet(root: Path, models: int = 4) -> list[str]:
    """A synset of spheres in the ONet layout, with points.npz, 24 views coloured by their number, no lists."""
    rng = np.random.default_rng(0)
    (root / "metadata.yaml").parent.mkdir(parents=True, exist_ok=True)
    (root / "metadata.yaml").write_text('{"03001627": {"id": "03001627", "name": "chair"}}\n')
    names = [f"model{i}" for i in range(models)]
    for name in names:
        folder = root / "03001627" / name
        (folder / "img_choy2016").mkdir(parents=True)
        points, normals = sphere_cloud(rng, 3000)
        np.savez(folder / "pointcloud.npz", points=points, normals=normals, loc=np.zeros(3), scale=np.float16(1))
        uniform = rng.uniform(-0.55, 0.55, size=(1001, 3)).astype(np.float16)
        inside = np.linalg.norm(uniform.astype(np.float64), axis=1) < 0.4
        np.savez(folder / "points.npz", points=uniform, occupancies=np.packbits(inside), loc=np.zeros(3),
                 scale=np.float16(1))
        for view in range(24):
            Image.new("RGB", (8, 8), (10 * view, 100, 200)).save(folder / "img_choy2016" / f"{view:03d}.jpg")
        np.savez(folder / "img_choy2016" / "cameras.npz", world_mat_0=np.eye(3, 4))
    return names


def test_onet_points_npz_layout(tmp_path):
    root = tmp_path / "onet"
    write_onet(root)
    config = ShapeNetONetConfig(root=str(root), input_points=64, image_size=16, **SMALL)
    with pytest.raises(DataFileError, match="fewer than iou_points = 2000"):  # points.npz has 1001
        build_onet(dataclasses.replace(config, iou_points=2000), tmp_path).split("test")[0]
    dataset = build_onet(config, tmp_path / "cache")
    assert dataset.info.classes == ("chair",) and [len(dataset.split(s)) for s in keys.SPLITS] == [2, 1, 1]
    assert not (tmp_path / "cache" / "shapenet_onet").exists()  # nothing to derive
    for split in keys.SPLITS:
        item = dataset.split(split)[0]
        for query, occupancy in ((item[keys.QUERY], item[keys.OCCUPANCY]),
                                 (item.get("iou_query"), item.get("iou_occupancy"))):
            if query is not None:
                assert np.array_equal(occupancy.numpy() == 1, np.linalg.norm(query.numpy(), axis=1) < 0.4)
        assert (keys.SURFACE in item) == (split != "train")  # evaluation only
        surface = dataset.split(split).shape(0)["surface"].astype(np.float32)
        assert np.allclose(np.linalg.norm(surface, axis=1), 0.4, atol=1e-3)
        red = float(item[keys.IMAGE][0].mean()) * 255 / 10  # the view number
        assert item[keys.IMAGE].shape == (3, 16, 16) and (split == "train" or abs(red) < 0.5)
        assert dataset.mesh_path(split, 0) is None
    torch.manual_seed(0)
    views = {round(float(dataset.split("train")[1][keys.IMAGE][0].mean()) * 25.5) for _ in range(12)}
    assert len(views) > 3 and views <= set(range(24))
    assert dataset.split("train")[0][keys.POINTS].shape == (64, 3)


def test_onet_split_lists_and_malformed_files(tmp_path):
    root = tmp_path / "onet"
    names = write_onet(root)
    config = ShapeNetONetConfig(root=str(root), **SMALL)
    fallback = build_onet(config, tmp_path).info.fingerprint
    for split, chosen in (("train", names[:2]), ("val", names[2:3]), ("test", names[3:])):
        (root / "03001627" / f"{split}.lst").write_text("\n".join(chosen) + "\n")
    listed = build_onet(config, tmp_path)
    assert [s.model for s in listed.shapes["train"]] == names[:2] and listed.info.fingerprint != fallback
    (root / "03001627" / "test.lst").write_text(f"{names[3]}\nghost\n")
    with raises_at(root / "03001627" / "test.lst", 2):
        build_onet(config, tmp_path)
    (root / "03001627" / "test.lst").write_text(names[3] + "\n")

    with pytest.raises(ValueError, match="not synsets"):
        build_onet(dataclasses.replace(config, classes=["02691156"]), tmp_path)
    (root / "02691156").mkdir()
    with raises_at(root / "metadata.yaml") as error:
        build_onet(config, tmp_path)
    assert "02691156" in str(error.value)
    (root / "02691156").rmdir()

    occupancy = root / "03001627" / names[0] / "points.npz"
    with np.load(occupancy) as stored:
        np.savez(occupancy, points=stored["points"], occupancies=stored["occupancies"][:-10])
    cloud = root / "03001627" / names[1] / "pointcloud.npz"
    cloud.write_bytes(cloud.read_bytes()[:200])  # a truncated download
    dataset = build_onet(config, tmp_path)
    with raises_at(occupancy) as error:
        dataset.split("train")[0]
    assert "packed" in str(error.value)
    with raises_at(cloud) as error:
        dataset.split("train")[1]
    assert "unreadable .npz" in str(error.value)
    with zipfile.ZipFile(occupancy, "w") as archive:
        archive.writestr("points.npy", b"garbage")
    with raises_at(occupancy):
        dataset.split("train")[0]


@pytest.fixture(scope="module")
def shared_tables(tmp_path_factory: pytest.TempPathFactory):
    config = ShapeNetONetConfig(root=str(REAL / "shapenet_onet"), mesh_root=str(REAL / "shapenetcore_v2"),
                                classes=[TABLE], image_size=64, **SMALL)
    return build_onet(config, tmp_path_factory.mktemp("cache")), config


@needs_real
def test_onet_derived_from_shared_voxels_in_the_point_cloud_frame(shared_tables):
    dataset, _ = shared_tables
    assert dataset.info.classes == ("table",) and sum(len(dataset.split(s)) for s in keys.SPLITS) == 5
    for split in keys.SPLITS:
        for index, shape in enumerate(dataset.shapes[split]):
            assert shape.source == "voxels"
            with np.load(REAL / "shapenet_onet" / shape.key / "pointcloud.npz") as stored:
                cloud = stored["points"].astype(np.float32)
            mesh = trimesh.load(dataset.mesh_path(split, index), process=False)
            samples = mesh.sample(20_000, seed=0).astype(np.float32)
            to_cloud, to_mesh = KDTree(cloud).query(samples)[0], KDTree(samples).query(cloud[::5])[0]
            assert to_cloud.mean() < 0.006 and to_mesh.mean() < 0.01  # Chamfer: the frames agree
            stored = dict(np.load(dataset.directory / f"{shape.key}.npz"))
            assert 0 < stored["occupancy"].mean() < 0.5 and float(stored["frame_residual"]) < 0.01
            item = dataset.split(split)[index]
            assert item[keys.IMAGE].shape == (3, 64, 64) and 0 <= item[keys.IMAGE].min() < item[keys.IMAGE].max() <= 1
    view = dataset.split("test")[0][keys.IMAGE]
    with Image.open(REAL / "shapenet_onet" / dataset.shapes["test"][0].key / "img_choy2016" / "000.jpg") as image:
        expected = np.asarray(image.convert("RGB").resize((64, 64), Image.BILINEAR), np.float32) / 255
    assert np.allclose(view.numpy(), expected.transpose(2, 0, 1))


@needs_real
def test_onet_voxel_occupancy_agrees_with_the_mesh_far_from_the_surface(shared_tables, tmp_path):
    """The simple closed table: winding number and voxels must agree beyond two voxels from the surface."""
    dataset, config = shared_tables
    split, index = next((s, i) for s, items in dataset.shapes.items() for i, shape in enumerate(items)
                        if shape.model == SIMPLE_TABLE)
    by_mesh = build_onet(dataclasses.replace(config, occupancy_from=["mesh"]), tmp_path)
    assert by_mesh.shapes[split][index].source == "mesh" and by_mesh.info.fingerprint != dataset.info.fingerprint
    stored = [dict(np.load(d.directory / f"{TABLE}/{SIMPLE_TABLE}.npz")) for d in (dataset, by_mesh)]
    assert np.array_equal(stored[0]["occ_points"], stored[1]["occ_points"])
    mesh = trimesh.load(dataset.mesh_path(split, index), process=False)
    points = stored[0]["occ_points"].astype(np.float64)
    voxel = float(stored[0]["frame_scale"]) * read_binvox(
        REAL / "shapenetcore_v2" / TABLE / SIMPLE_TABLE / "models" / "model_normalized.solid.binvox").scale / 128
    far = np.sqrt(igl.point_mesh_squared_distance(points, mesh.vertices, mesh.faces)[0]) > 2 * voxel
    assert far.sum() > 1000 and stored[0]["occupancy"][far].any()
    assert (stored[0]["occupancy"][far] == stored[1]["occupancy"][far]).mean() > 0.99
    assert float(stored[0]["frame_residual"]) < 0.01


@needs_real
def test_onet_without_mesh_root_or_with_a_wrong_one(tmp_path):
    config = ShapeNetONetConfig(root=str(REAL / "shapenet_onet"), classes=[BENCH], **SMALL)
    with pytest.raises(FileNotFoundError, match="no dataset.mesh_root given"):
        build_onet(config, tmp_path)
    wrong = tmp_path / "v1"
    source = REAL / "shapenetcore_v2" / BENCH
    for model in sorted(p.name for p in source.iterdir()):
        target = wrong / BENCH / model / "models"
        target.mkdir(parents=True)
        mesh = trimesh.load(source / model / "models" / "model_normalized.obj", force="mesh", process=False)
        mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]))  # not v2's frame
        mesh.export(target / "model_normalized.obj")
    with pytest.raises(DataFileError, match="frame fit"):
        build_onet(dataclasses.replace(config, mesh_root=str(wrong), occupancy_from=["mesh"]), tmp_path)
