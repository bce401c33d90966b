"""The synthetic shapes dataset: determinism, geometry, labels, rendered views, cache repair, items."""
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
from harness_plugins.datasets.synthetic_shapes import PROFILES, SPEC, SyntheticShapesConfig, cache, render
from harness_plugins.datasets.synthetic_shapes.dataset import build
from harness_plugins.datasets.synthetic_shapes.generate import design_shape, generate_shape
from harness_plugins.datasets.synthetic_shapes.shapes import BUILDERS
from harness_plugins.datasets.synthetic_shapes.vocab import CATEGORIES, CATEGORY_PARTS
from scipy.spatial import cKDTree

from harness import data as keys

TINY = SyntheticShapesConfig(train_per_class=1, val_per_class=1, test_per_class=1, edge_length=0.05,
                             n_occupancy=3000, n_surface=3000, input_points=100, query_points=512,
                             eval_surface_points=1000, iou_points=1000, views=6, image_size=32, workers=1)
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
    ({"image_size": 0}, "image_size"),
    ({"view_radius": 0.8}, "view_radius"),  # inside the bounding sphere of the unit cube
    ({"view_elevation": 90}, "view_elevation"),
    ({"view_focal": -1.0}, "view_focal"),
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
    assert info.modalities == SPEC.capabilities.modalities == ("points", "image")
    assert info.targets == ("occupancy", "part", "label")
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
                   {"near_sigma": 0.02}, {"train_per_class": 2}, {"views": 5}, {"image_size": 31},
                   {"view_radius": 2.5}, {"view_elevation": 20.0}, {"view_focal": 1.5}):
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


# --- rendered views --------------------------------------------------------------------------------------


def project(points: np.ndarray, azimuth: float, elevation: float, radius: float, focal: float,
            size: int) -> np.ndarray:
    """Continuous pixel coordinates (column, row) of world points, from a camera pose built with transformation
    matrices in OpenGL convention (looking down its -z), independently of the renderer's look-at."""
    pose = (trimesh.transformations.rotation_matrix(np.radians(azimuth), [0, 1, 0])
            @ trimesh.transformations.rotation_matrix(np.radians(-elevation), [1, 0, 0])
            @ trimesh.transformations.translation_matrix([0, 0, radius]))
    local = trimesh.transform_points(points, np.linalg.inv(pose))
    depth = -local[:, 2]
    return np.stack([size / 2 + focal * local[:, 0] / depth, size / 2 - focal * local[:, 1] / depth], axis=1)


def test_sphere_silhouette_is_the_analytic_disc():
    """A sphere seen from distance d is a disc of radius f R / sqrt(d^2 - R^2); outside it, rays miss: white."""
    size, focal, distance, sphere_radius = 64, 48.0, 2.0, 0.45
    sphere = trimesh.creation.icosphere(subdivisions=5, radius=sphere_radius)
    views = render.render_views(sphere.vertices, sphere.faces, np.array([0.0, 130.0]), 25.0, distance, focal, size)
    assert views.shape == (2, size, size) and views.dtype == np.uint8
    disc = focal * sphere_radius / np.sqrt(distance ** 2 - sphere_radius ** 2)
    centres = np.arange(size) + 0.5 - size / 2
    from_centre = np.hypot(*np.meshgrid(centres, centres, indexing="ij"))
    for view in views:
        silhouette = view < render.BACKGROUND
        assert abs(silhouette.sum() / (np.pi * disc ** 2) - 1) < 0.02
        assert np.all(view[from_centre > disc + 1] == render.BACKGROUND)
        assert np.all(view[from_centre < disc - 1] <= render.OBJECT_MAX)
        assert view[silhouette].min() < view[silhouette].max()  # shaded, not flat


def test_views_show_the_mesh_where_it_projects(tiny):
    """Every vertex projects inside the frame onto the silhouette, and every silhouette pixel lies within reach
    of a projected vertex: triangles with edges of at most e pixels are covered by discs of radius e / sqrt(3)
    around their corners. Rendered finer than the stored views, where every part is wider than a pixel."""
    size = 128
    nearest_depth = TINY.view_radius - 3 ** 0.5 / 2  # no vertex is nearer the camera
    reach = TINY.edge_length * TINY.view_focal * size / nearest_depth / 3 ** 0.5
    for split, index in all_shapes(tiny)[::4]:
        shape = stored(tiny, split, index)
        vertices = shape["vertices"].astype(np.float64)
        views = render.render_views(vertices, shape["faces"], shape["view_azimuth"], TINY.view_elevation,
                                    TINY.view_radius, TINY.view_focal * size, size)
        for view, azimuth in zip(views, shape["view_azimuth"]):
            pixels = project(vertices, azimuth, TINY.view_elevation, TINY.view_radius, TINY.view_focal * size, size)
            assert pixels.min() > 0 and pixels.max() < size  # the whole shape is in view
            silhouette = view < render.BACKGROUND
            grown = np.pad(silhouette, 1)  # a vertex on the outline may fall in a pixel whose centre ray misses
            grown = np.max([np.roll(np.roll(grown, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 0)
            column, row = np.floor(pixels).astype(int).T
            assert grown[row + 1, column + 1].all()
            rows, columns = np.nonzero(silhouette)
            distance, _ = cKDTree(pixels).query(np.stack([columns + 0.5, rows + 0.5], axis=1))
            assert distance.max() < reach


def test_stored_views_and_cameras(tiny):
    for split, index in all_shapes(tiny):
        shape = stored(tiny, split, index)
        views, azimuths = shape["views"], shape["view_azimuth"]
        assert views.shape == (TINY.views, TINY.image_size, TINY.image_size) and views.dtype == np.uint8
        silhouettes = views < render.BACKGROUND
        assert silhouettes.any(axis=(1, 2)).all() and not silhouettes.all(axis=(1, 2)).any()
        assert azimuths.shape == (TINY.views,) and np.all((azimuths >= 0) & (azimuths < 360))
        assert float(shape["view_focal"]) == TINY.view_focal * TINY.image_size
        assert (float(shape["view_radius"]), float(shape["view_elevation"])) == (TINY.view_radius,
                                                                                 TINY.view_elevation)


def test_views_differ_by_azimuth_and_are_reproducible(tiny):
    shape = stored(tiny, "train", 4)
    azimuths = shape["view_azimuth"]
    assert len(np.unique(azimuths)) == TINY.views
    views = shape["views"]
    assert all(not np.array_equal(views[i], views[j]) for i in range(len(views)) for j in range(i))
    assert not np.array_equal(azimuths, stored(tiny, "train", 5)["view_azimuth"])
    args = (shape["vertices"], shape["faces"], azimuths, TINY.view_elevation, TINY.view_radius,
            float(shape["view_focal"]), TINY.image_size)
    assert np.array_equal(render.render_views(*args), views)
    # turning the shape by -30 degrees about y looks like turning the camera by +30 degrees
    turned = trimesh.transform_points(shape["vertices"], trimesh.transformations.rotation_matrix(
        np.radians(-30), [0, 1, 0]))
    same = render.render_views(turned, *args[1:]) == render.render_views(args[0], args[1], azimuths + 30, *args[3:])
    assert same.mean() > 0.99


def test_fallback_intersector_renders_the_same():
    """Without embreex, trimesh's own intersector takes over; both see the same picture."""
    mesh = trimesh.creation.annulus(r_min=0.15, r_max=0.4, height=0.3)
    args = (mesh.vertices, mesh.faces, np.array([40.0]), 30.0, 2.0, 20.0, 20)
    own = render.render_views(*args, caster=trimesh.ray.ray_triangle.RayMeshIntersector(mesh))
    assert (render.render_views(*args) == own).mean() > 0.98 and (own < render.BACKGROUND).any()


def test_image_settings_regenerate_the_views(tmp_path):
    config = dataclasses.replace(TINY, categories=["mug"])
    first = build(config, tmp_path)
    second = build(dataclasses.replace(config, image_size=20, view_elevation=10.0), tmp_path)
    assert second.directory != first.directory
    regenerated = stored(second, "val", 0)
    assert regenerated["views"].shape == (TINY.views, 20, 20) and float(regenerated["view_elevation"]) == 10.0
    assert np.array_equal(regenerated["view_azimuth"], stored(first, "val", 0)["view_azimuth"])


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
        keys.POINTS_PART: ((config.input_points,), torch.int64),
        keys.INDEX: ((), torch.int64),
        keys.IMAGE: ((3, config.image_size, config.image_size), torch.float32),
    }
    if evaluation:  # the evaluation-only arrays: training items leave them out (they cost data time, unused)
        expected[keys.SURFACE] = ((config.eval_surface_points, 3), torch.float32)
        expected[keys.NORMALS] = ((config.eval_surface_points, 3), torch.float32)
        expected[keys.SURFACE_PART] = ((config.eval_surface_points,), torch.int64)
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
        if split != "train":
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


def test_image_items(tiny):
    """Val/test show view 0 every time; training shows a random one of the stored views."""
    for split in SPLITS:
        views = torch.from_numpy(stored(tiny, split, 2)["views"]).float() / 255
        image = tiny.split(split)[2][keys.IMAGE]
        assert 0 <= image.min() < image.max() <= 1
        assert torch.equal(image[0], image[1]) and torch.equal(image[0], image[2])  # grey
        if split != "train":
            assert torch.equal(image[0], views[0])
    views = torch.from_numpy(stored(tiny, "train", 2)["views"]).float() / 255
    torch.manual_seed(0)
    shown = {int(torch.nonzero((views == tiny.split("train")[2][keys.IMAGE][0]).flatten(1).all(1))[0])
             for _ in range(40)}
    assert len(shown) > 1


def test_dataloader_batches(tiny):
    loader = torch.utils.data.DataLoader(tiny.split("val"), batch_size=4)
    batch = next(iter(loader))
    assert batch[keys.QUERY].shape == (4, TINY.query_points, 3) and batch[keys.LABEL].tolist() == [0, 1, 2, 3]
    assert tiny.mesh_path("val", 0).is_file()
    with pytest.raises(IndexError):
        tiny.mesh_path("val", len(CATEGORIES))
