"""The synthetic shapes dataset: determinism, geometry, labels, cache repair, items."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil

import igl
import numpy as np
import pytest
import torch
import trimesh
from harness_plugins.datasets.synthetic_shapes import PROFILES, SPEC, SyntheticShapesConfig, cache
from harness_plugins.datasets.synthetic_shapes.dataset import build
from harness_plugins.datasets.synthetic_shapes.generate import design_shape, generate_shape
from harness_plugins.datasets.synthetic_shapes.shapes import BUILDERS
from harness_plugins.datasets.synthetic_shapes.vocab import CATEGORIES, CATEGORY_PARTS

from harness import data as keys

TINY = SyntheticShapesConfig(train_per_class=1, val_per_class=1, test_per_class=1, edge_length=0.05,
                             n_occupancy=3000, n_surface=3000, input_points=100, query_points=512,
                             eval_surface_points=1000, iou_points=1000, workers=1)
SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    return build(TINY, tmp_path_factory.mktemp("cache"))


def stored(dataset, split: str, index: int) -> dict[str, np.ndarray]:
    with np.load(dataset.directory / cache.shape_files(split, index)[0]) as npz:
        return dict(npz)


def all_shapes(dataset):
    return [(split, i) for split in SPLITS for i in range(len(dataset.split(split)))]


# --- configuration ---------------------------------------------------------------------------------------


def test_spec_and_profiles_are_valid_configs():
    assert SPEC.load() is build
    for overrides in PROFILES.values():
        SyntheticShapesConfig(**overrides).validate()
    SyntheticShapesConfig().validate()


@pytest.mark.parametrize("overrides, field", [
    ({"categories": ["chair", "spaceship"]}, "spaceship"),
    ({"train_per_class": 0}, "train_per_class"),
    ({"n_occupancy": 2.5}, "n_occupancy"),
    ({"query_points": 4000}, "query_points"),
    ({"iou_points": 2000}, "iou_points"),  # only 1500 of the 3000 samples are uniform
    ({"near_fraction": 1.5}, "near_fraction"),
    ({"edge_length": 0.0}, "edge_length"),
    ({"workers": True}, "workers"),
])
def test_bad_config_names_the_field(overrides, field, tmp_path):
    with pytest.raises(ValueError, match=field) as error:
        build(dataclasses.replace(TINY, **overrides), tmp_path)
    if field == "spaceship":
        assert all(name in str(error.value) for name in CATEGORIES)
    assert not any(tmp_path.iterdir())  # rejected before touching the cache


def test_info(tiny):
    info = tiny.info
    assert info.name == "synthetic_shapes" and info.classes == CATEGORIES and info.splits == SPLITS
    assert info.modalities == ("points",) and info.targets == ("occupancy", "part", "label")
    assert len(info.parts) == sum(len(p) for p in CATEGORY_PARTS.values())
    flat = [pid for c in info.classes for pid in info.parts_per_class[c]]
    assert flat == list(range(len(info.parts)))
    assert all(info.parts[pid].startswith(f"{c}/") for c in info.classes for pid in info.parts_per_class[c])
    with pytest.raises(KeyError, match="nope"):
        tiny.split("nope")


def test_fingerprint_tracks_generation_parameters_only(tiny, monkeypatch):
    manifest = json.loads((tiny.directory / cache.MANIFEST).read_text())
    assert manifest["fingerprint"] == tiny.info.fingerprint == tiny.directory.name
    assert manifest["config"] == TINY.generation_params()
    assert len(manifest["files"]) == 2 * 3 * len(CATEGORIES)
    for name, record in manifest["files"].items():
        assert record["sha256"] == cache._sha256(tiny.directory / name)
    base = cache.fingerprint(TINY)
    for change in ({"seed": 1}, {"n_occupancy": 3001}, {"edge_length": 0.04}, {"categories": ["chair"]},
                   {"near_sigma": 0.02}, {"train_per_class": 2}):
        assert cache.fingerprint(dataclasses.replace(TINY, **change)) != base, change
    for change in ({"input_points": 7}, {"query_points": 8}, {"workers": 2}, {"input_noise": 0.0}):
        assert cache.fingerprint(dataclasses.replace(TINY, **change)) == base, change
    monkeypatch.setattr(cache, "GENERATOR_VERSION", "test")
    assert cache.fingerprint(TINY) != base


# --- generation ------------------------------------------------------------------------------------------


def test_deterministic_across_builds_and_worker_counts(tiny, tmp_path):
    config = dataclasses.replace(TINY, categories=["mug", "chair"], workers=2)
    first, second = build(config, tmp_path / "a"), build(dataclasses.replace(config, workers=1), tmp_path / "b")
    for split, index in all_shapes(first):
        a, b = stored(first, split, index), stored(second, split, index)
        assert a.keys() == b.keys()
        assert all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    # same shape content whatever the other categories: chair is seeded by its name, not its position
    chair = stored(first, "val", 1)
    assert np.array_equal(chair["vertices"], stored(tiny, "val", 0)["vertices"])
    other = generate_shape(dataclasses.replace(config, seed=1), "val", 1)
    assert not np.array_equal(chair["occ_points"], other["occ_points"])


def test_builders_use_every_part_of_their_vocabulary():
    for category, builder in BUILDERS.items():
        used = set()
        for seed in range(40):
            parts = {p.part for p in builder(np.random.default_rng(seed))}
            assert parts <= set(CATEGORY_PARTS[category]), category
            used |= parts
        assert used == set(CATEGORY_PARTS[category]), category


def test_meshes_watertight_and_normalised(tiny):
    for split, index in all_shapes(tiny):
        shape = stored(tiny, split, index)
        mesh = trimesh.Trimesh(shape["vertices"], shape["faces"], process=False)
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0
        lo, hi = shape["vertices"].min(0), shape["vertices"].max(0)
        assert lo.min() >= -0.5 - 1e-6 and hi.max() <= 0.5 + 1e-6
        assert abs((hi - lo).max() - 1.0) < 1e-6
        ply = trimesh.load(tiny.mesh_path(split, index), process=False)
        assert np.array_equal(ply.vertices, shape["vertices"].astype(np.float64))
        assert np.array_equal(ply.faces, shape["faces"])


def test_occupancy_matches_ray_test(tiny):
    rng = np.random.default_rng(0)
    for split, index in all_shapes(tiny)[::3]:
        shape = stored(tiny, split, index)
        vertices, faces = shape["vertices"].astype(np.float64), shape["faces"].astype(np.int64)
        pick = rng.choice(len(shape["occ_points"]), 300, replace=False)
        points = shape["occ_points"][pick].astype(np.float64)
        far = igl.point_mesh_squared_distance(points, vertices, faces)[0] > 1e-3 ** 2  # rays are unsure nearer
        rays = trimesh.Trimesh(vertices, faces).contains(points[far])
        assert np.array_equal(rays, shape["occupancy"][pick][far])
        assert 0 < shape["occupancy"].mean() < 1


def test_part_labels(tiny):
    rng = np.random.default_rng(0)
    for split, index in all_shapes(tiny):
        shape = stored(tiny, split, index)
        category, primitives, _ = design_shape(TINY, split, index)
        own = np.asarray(tiny.info.parts_per_class[category])
        # every part of the shape shows on its surface, and nothing else does
        part_ids = {own[CATEGORY_PARTS[category].index(p.part)] for p in primitives}
        assert set(np.unique(shape["vertex_part"])) == part_ids
        inside = shape["occupancy"]
        assert np.all(shape["occ_part"][~inside] == keys.IGNORE_INDEX)
        assert np.isin(shape["occ_part"][inside], own).all()
        assert np.isin(shape["surface_part"], own).all()
        # inside samples and surface samples take the label of the nearest mesh vertex
        for points, labels in ((shape["occ_points"][inside], shape["occ_part"][inside]),
                               (shape["surface"], shape["surface_part"])):
            for i in rng.choice(len(points), min(20, len(points)), replace=False):
                nearest = np.argmin(((shape["vertices"] - points[i]) ** 2).sum(1))
                assert labels[i] == shape["vertex_part"][nearest]


@pytest.mark.parametrize("category, end, part", [
    ("chair", "bottom", "leg"), ("table", "top", "top"), ("table", "bottom", "leg"), ("lamp", "bottom", "base"),
    ("car", "bottom", "wheel"), ("bench", "bottom", "leg"), ("bottle", "bottom", "body"),
])
def test_vertex_labels_follow_the_geometry(tiny, category, end, part):
    """The extreme vertices of a shape lie on the part that must be there."""
    index = tiny.info.classes.index(category)
    for split in SPLITS:
        shape = stored(tiny, split, index)
        y = shape["vertices"][:, 1]
        extreme = np.isclose(y, y.min() if end == "bottom" else y.max(), atol=1e-5)
        expected = tiny.info.parts.index(f"{category}/{part}")
        assert np.all(shape["vertex_part"][extreme] == expected)


# --- cache -----------------------------------------------------------------------------------------------


def test_damaged_cache_files_are_regenerated(tiny, tmp_path):
    copy = tmp_path / "cache"
    shutil.copytree(tiny.directory.parent.parent, copy)
    directory = copy / "synthetic_shapes" / tiny.info.fingerprint
    originals = {name: (directory / name).read_bytes() for name in
                 (cache.shape_files("train", 0)[0], cache.shape_files("val", 3)[0], cache.shape_files("test", 5)[1],
                  cache.shape_files("test", 6)[0], cache.shape_files("train", 7)[0])}
    overwritten, truncated, deleted, restamped, untouched = originals
    with open(directory / overwritten, "r+b") as f:  # same size, new bytes
        f.seek(len(originals[overwritten]) // 2)
        f.write(b"\0" * 64)
    (directory / truncated).write_bytes(originals[truncated][:100])
    (directory / deleted).unlink()
    before = (directory / restamped).stat()
    with open(directory / restamped, "r+b") as f:
        f.seek(len(originals[restamped]) - 64)
        f.write(b"\xff" * 8)
    os.utime(directory / restamped, ns=(before.st_atime_ns, before.st_mtime_ns))  # a stat check cannot see it
    (directory / "train" / ".000001.npz.123.tmp").write_bytes(b"half")  # left by a killed generation
    untouched_mtime = (directory / untouched).stat().st_mtime_ns

    build(TINY, copy)
    for name in (overwritten, truncated, deleted):
        assert (directory / name).read_bytes() == originals[name], name
    assert (directory / restamped).read_bytes() != originals[restamped]
    assert (directory / untouched).stat().st_mtime_ns == untouched_mtime  # intact shapes are left alone
    assert not list(directory.rglob("*.tmp"))

    build(dataclasses.replace(TINY, checksum_all=True), copy)
    assert (directory / restamped).read_bytes() == originals[restamped]

    (directory / cache.MANIFEST).write_text("{not json")
    dataset = build(TINY, copy)
    assert all(np.array_equal(stored(dataset, "val", 3)[k], v) for k, v in stored(tiny, "val", 3).items())


# --- items -----------------------------------------------------------------------------------------------


def check_item(item: dict, config: SyntheticShapesConfig, evaluation: bool) -> None:
    expected = {
        keys.POINTS: ((config.input_points, 3), torch.float32),
        keys.QUERY: ((config.query_points, 3), torch.float32),
        keys.OCCUPANCY: ((config.query_points,), torch.float32),
        keys.PART: ((config.query_points,), torch.int64),
        keys.LABEL: ((), torch.int64),
        keys.SURFACE: ((config.eval_surface_points, 3), torch.float32),
        keys.NORMALS: ((config.eval_surface_points, 3), torch.float32),
        keys.SURFACE_PART: ((config.eval_surface_points,), torch.int64),
        keys.INDEX: ((), torch.int64),
    }
    if evaluation:
        expected["iou_query"] = ((config.iou_points, 3), torch.float32)
        expected["iou_occupancy"] = ((config.iou_points,), torch.float32)
    assert {k: (tuple(v.shape), v.dtype) for k, v in item.items()} == expected


def test_items(tiny):
    for split in SPLITS:
        data = tiny.split(split)
        assert len(data) == len(CATEGORIES)
        item = data[3]
        check_item(item, TINY, evaluation=split != "train")
        assert int(item[keys.LABEL]) == 3 and int(item[keys.INDEX]) == 3
        shape = stored(tiny, split, 3)
        # inputs are noisy surface points, occupancy and parts come from the stored samples
        surface = torch.from_numpy(shape["surface"])
        assert torch.cdist(item[keys.POINTS], surface).min(1).values.max() < 6 * TINY.input_noise
        lookup = {tuple(p): (o, q) for p, o, q in zip(shape["occ_points"].tolist(), shape["occupancy"],
                                                       shape["occ_part"])}
        for point, occupancy, part in zip(item[keys.QUERY].tolist(), item[keys.OCCUPANCY], item[keys.PART]):
            assert lookup[tuple(point)] == (bool(occupancy), int(part))
        assert torch.equal(item[keys.SURFACE], tiny.split(split)[3][keys.SURFACE])  # a fixed subset
        with pytest.raises(IndexError):
            data[len(data)]
    for split in ("val", "test"):
        a, b = tiny.split(split)[2], tiny.split(split)[2]
        assert all(torch.equal(a[k], b[k]) for k in a)
        half = 0.5 + TINY.padding / 2
        assert a["iou_query"].abs().max() <= half and 0 < a["iou_occupancy"].mean() < 1
    train = tiny.split("train")
    assert not torch.equal(train[2][keys.QUERY], train[2][keys.QUERY])
    torch.manual_seed(5)
    first = train[2]
    torch.manual_seed(5)
    assert torch.equal(first[keys.POINTS], train[2][keys.POINTS])


def test_dataloader_batches(tiny):
    loader = torch.utils.data.DataLoader(tiny.split("val"), batch_size=4)
    batch = next(iter(loader))
    assert batch[keys.QUERY].shape == (4, TINY.query_points, 3) and batch[keys.LABEL].tolist() == [0, 1, 2, 3]
    assert tiny.mesh_path("val", 0).is_file()
    with pytest.raises(IndexError):
        tiny.mesh_path("val", len(CATEGORIES))
