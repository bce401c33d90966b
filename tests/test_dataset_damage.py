"""Dataset-level reliability: cached files damaged behind the manifest's back, items listed in several splits,
shapes missing a source file, PLY faces given as triangle strips."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import re
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from harness_plugins.datasets.modelnet40 import ModelNet40ResampledConfig
from harness_plugins.datasets.modelnet40.dataset import build_resampled
from harness_plugins.datasets.ply_io import read_ply
from harness_plugins.datasets.scannet import ScanNetConfig
from harness_plugins.datasets.scannet.dataset import build as build_scannet
from harness_plugins.datasets.scenenn import SceneNNConfig
from harness_plugins.datasets.scenenn.dataset import build as build_scenenn
from harness_plugins.datasets.shapenet_onet import ShapeNetONetConfig
from harness_plugins.datasets.shapenet_onet.dataset import build as build_onet
from harness_plugins.datasets.shapenetpart import ShapeNetPartConfig
from harness_plugins.datasets.shapenetpart.dataset import build as build_part
from harness_plugins.datasets.synthetic_shapes import SyntheticShapesConfig
from harness_plugins.datasets.synthetic_shapes.dataset import build as build_shapes

from harness import datacache
from harness.datacache import DataFileError, read_arrays, shape_files
from tests.test_real_datasets import BENCH, REAL, TABLE, needs_real, write_onet, write_part_benchmark, write_resampled
from tests.test_real_datasets import SMALL as REAL_SMALL
from tests.test_scene_datasets import SMALL as SCENE_SMALL
from tests.test_scene_datasets import write_raw_scannet, write_scenenn

# two categories, one shape of each per split: the smallest cache with every split
TWO = SyntheticShapesConfig(categories=["mug", "bottle"], train_per_class=1, val_per_class=1, test_per_class=1,
                            edge_length=0.05, n_occupancy=3000, n_surface=3000, input_points=100, query_points=512,
                            eval_surface_points=1000, iou_points=1000, views=2, image_size=16, workers=1)


def garble_member(path: Path, member: str) -> None:
    """Invert 16 bytes in the middle of one array of an (uncompressed) npz, keeping its size and mtime: damage
    that only reading the array (its zip CRC) reveals."""
    before = path.stat()
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
    data[start:start + 16] = bytes(b ^ 0xFF for b in data[start:start + 16])
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size and path.stat().st_mtime_ns == before.st_mtime_ns


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory):
    return build_shapes(TWO, tmp_path_factory.mktemp("clean"))


def copy_garbled(directory: Path, tmp_path: Path, name: str, member: str) -> Path:
    """A copy of the cache root above ``directory`` (a dataset's cache folder) with ``member`` of its file ``name``
    garbled; returns the copy's root."""
    root = tmp_path / "garbled"
    shutil.copytree(directory.parent.parent, root)
    garble_member(root / directory.parent.name / directory.name / name, member)
    return root


# ----- 1. a garbled cached file -------------------------------------------------------------------------------


def test_a_garbled_cached_npz_names_its_file(clean, tmp_path):
    name = shape_files("val", 1)[0]
    root = copy_garbled(clean.directory, tmp_path, name, "normals.npy")
    path = root / "synthetic_shapes" / clean.info.fingerprint / name
    expected = f"{path}: unreadable .npz (BadZipFile: Bad CRC-32 for file 'normals.npy')"
    with pytest.raises(DataFileError, match=f"^{re.escape(expected)}$"):
        read_arrays(path, ("surface", "normals"))  # no cache to rebuild it from: the error names the file


def test_a_garbled_cached_npz_is_rebuilt_when_read(clean, tmp_path, caplog):
    name = shape_files("val", 1)[0]
    root = copy_garbled(clean.directory, tmp_path, name, "normals.npy")
    damaged = build_shapes(TWO, root)  # size and mtime unchanged: opening cannot see it
    path = damaged.directory / name
    assert damaged.info.fingerprint == clean.info.fingerprint
    split = pickle.loads(pickle.dumps(damaged.split("val")))  # as a spawned DataLoader worker gets it
    with caplog.at_level(logging.WARNING, logger="harness.datacache"):
        item = split[1]
    expected = clean.split("val")[1]
    assert item.keys() == expected.keys() and all(torch.equal(item[k], expected[k]) for k in item)
    assert path.read_bytes() == (clean.directory / name).read_bytes()  # rebuilt exactly as a clean build
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(path) in warnings[0] and "Bad CRC-32" in warnings[0]
    assert "rebuilding" in warnings[0]
    # the manifest vouches for the rebuilt file: a full re-hash on the next open finds nothing to redo
    mtime = path.stat().st_mtime_ns
    again = build_shapes(dataclasses.replace(TWO, checksum_all=True), root)
    assert again.info.fingerprint == clean.info.fingerprint and path.stat().st_mtime_ns == mtime
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="harness.datacache"):
        assert torch.equal(again.split("val")[1]["normals"], expected["normals"])
    assert not caplog.records


def test_a_file_that_stays_unreadable_after_its_rebuild_is_an_error(clean, tmp_path):
    name = shape_files("test", 0)[0]
    root = copy_garbled(clean.directory, tmp_path, name, "normals.npy")
    damaged = build_shapes(TWO, root)
    broken = datacache.VerifiedCache(damaged.cache.directory, damaged.cache.header, damaged.cache.jobs,
                                     lambda split, index: {})  # a "rebuild" that writes nothing
    with pytest.raises(DataFileError, match=f"^{re.escape(str(damaged.directory / name))}: unreadable .npz"):
        read_arrays(damaged.directory / name, ("normals",), broken)


def test_a_garbled_scene_npz_is_prepared_again_when_read(tmp_path, caplog):
    source = tmp_path / "scenenn"
    for k in range(4):
        write_scenenn(source, f"{k:03d}", nested=False)
    config = SceneNNConfig(root=str(source), **SCENE_SMALL)
    clean = build_scenenn(config, tmp_path / "clean")
    name = shape_files("test", 0)[0]
    damaged = build_scenenn(config, copy_garbled(clean.directory, tmp_path, name, "udf.npy"))
    assert damaged.info.fingerprint == clean.info.fingerprint
    with caplog.at_level(logging.WARNING, logger="harness.datacache"):
        item = damaged.split("test")[0]
    expected = clean.split("test")[0]
    assert all(torch.equal(item[k], expected[k]) for k in expected)
    assert (damaged.directory / name).read_bytes() == (clean.directory / name).read_bytes()
    assert [str(damaged.directory / name) in r.getMessage() for r in caplog.records] == [True]


@needs_real
def test_a_garbled_derived_onet_npz_is_derived_again_when_read(tmp_path, caplog):
    config = ShapeNetONetConfig(root=str(REAL / "shapenet_onet"), mesh_root=str(REAL / "shapenetcore_v2"),
                                classes=[TABLE], image_size=16, **REAL_SMALL)
    clean = build_onet(config, tmp_path / "clean")
    shape = clean.shapes["test"][0]
    name = f"{shape.key}.npz"
    damaged = build_onet(config, copy_garbled(clean.directory, tmp_path, name, "occupancy.npy"))
    with caplog.at_level(logging.WARNING, logger="harness.datacache"):
        item = damaged.split("test")[0]
    expected = clean.split("test")[0]
    assert all(torch.equal(item[k], expected[k]) for k in expected)
    assert (damaged.directory / name).read_bytes() == (clean.directory / name).read_bytes()
    assert [str(damaged.directory / name) in r.getMessage() for r in caplog.records] == [True]


# ----- 2. an item listed in several splits --------------------------------------------------------------------


def test_items_in_several_splits_are_counted_and_named():
    splits = {"train": ["a", "b", "c", "d", "e", "f", "g", "g"], "val": ["b", "h"],
              "test": ["a", "c", "d", "e", "f", "g"]}
    message = ("toy: items listed in more than one split of lists.txt: 7 (6 in train & test, 1 in train & val), e.g. "
               "a (train & test), b (train & val), c (train & test), d (train & test), e (train & test); "
               "dataset.strict_splits=true refuses such lists")
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        datacache.check_disjoint_splits("toy", splits, True, "lists.txt")
    datacache.check_disjoint_splits("toy", {"train": ["a", "a"], "test": ["b"]}, True, "lists.txt")  # disjoint


def onet_lists(root: Path) -> tuple[Callable, object, str]:
    write_onet(root)
    lists = {"train": ["model0", "model1"], "val": ["model2", "model1"], "test": ["model3", "model0"]}
    for split, models in lists.items():
        (root / "03001627" / f"{split}.lst").write_text("\n".join(models) + "\n")
    return build_onet, ShapeNetONetConfig(root=str(root), **REAL_SMALL), (
        f"shapenet_onet: items listed in more than one split of {root}/<synset>/{{train,val,test}}.lst: 2 "
        f"(1 in train & test, 1 in train & val), e.g. 03001627/model0 (train & test), 03001627/model1 (train & val)")


def part_lists(root: Path) -> tuple[Callable, object, str]:
    data = write_part_benchmark(root, official=True)
    listing = data / "train_test_split" / "shuffled_test_file_list.json"
    listing.write_text(json.dumps(json.loads(listing.read_text()) + ["shape_data/03001627/62700000"]))
    return build_part, ShapeNetPartConfig(root=str(root)), (
        f"shapenetpart: items listed in more than one split of "
        f"{data}/train_test_split/shuffled_{{train,val,test}}_file_list.json: 1 (1 in train & test), e.g. "
        f"03001627/62700000 (train & test)")


def scannet_lists(root: Path) -> tuple[Callable, object, str]:
    for k, scene in enumerate(["scene0001_00", "scene0002_00", "scene0003_00"]):
        write_raw_scannet(root, scene, shift=float(k))
    (root / "scannetv2_train.txt").write_text("scene0001_00\nscene0002_00\n")
    (root / "scannetv2_val.txt").write_text("scene0003_00\nscene0002_00\n")
    return build_scannet, ScanNetConfig(root=str(root), **SCENE_SMALL), (
        f"scannet: items listed in more than one split of {root}/scannetv2_train.txt and {root}/scannetv2_val.txt: "
        f"1 (1 in train & val), e.g. scene0002_00 (train & val)")


def scenenn_lists(root: Path) -> tuple[Callable, object, str]:
    for k in range(4):
        write_scenenn(root, f"{k:03d}", nested=False)
    (root / "train.txt").write_text("000\n001\n002\n")
    (root / "test.txt").write_text("002\n003\n")
    return build_scenenn, SceneNNConfig(root=str(root), **SCENE_SMALL), (
        f"scenenn: items listed in more than one split of {root}/train.txt and {root}/test.txt: 1 (1 in train & test), "
        f"e.g. 002 (train & test)")


def resampled_lists(root: Path) -> tuple[Callable, object, str]:
    write_resampled(root)
    with open(root / "modelnet40_test.txt", "a") as listing:
        listing.write("cone_0001\nnight_stand_0004\n")
    return build_resampled, ModelNet40ResampledConfig(root=str(root), input_points=16), (
        f"modelnet40_resampled: items listed in more than one split of {root}/modelnet40_train.txt and "
        f"{root}/modelnet40_test.txt: 2 (2 in train & test), e.g. cone_0001 (train & test), "
        f"night_stand_0004 (train & test)")


@pytest.mark.parametrize("layout", [onet_lists, part_lists, scannet_lists, scenenn_lists, resampled_lists])
def test_items_in_several_split_lists_warn_or_are_refused(layout, tmp_path, caplog):
    build, config, text = layout(tmp_path / "data")
    message = f"{text}; dataset.strict_splits=true refuses such lists"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        build(dataclasses.replace(config, strict_splits=True), tmp_path / "strict")
    with caplog.at_level(logging.WARNING, logger="harness.datacache"):
        build(config, tmp_path / "warned")  # accepted, as before, but not silently
    assert [r.getMessage() for r in caplog.records] == [message]


# ----- 3. a shape missing its occupancy source -----------------------------------------------------------------


def bench_without_one_mesh(tmp_path: Path) -> tuple[ShapeNetONetConfig, str]:
    """The shared benches with ShapeNetCore.v2 copied to ``tmp_path``, one model's obj removed (its voxels kept);
    returns the config and that model's folder."""
    mesh_root = tmp_path / "v2"
    shutil.copytree(REAL / "shapenetcore_v2" / BENCH, mesh_root / BENCH)
    model = sorted(p.name for p in (mesh_root / BENCH).iterdir())[1]
    (mesh_root / BENCH / model / "models" / "model_normalized.obj").unlink()
    config = ShapeNetONetConfig(root=str(REAL / "shapenet_onet"), mesh_root=str(mesh_root), classes=[BENCH],
                                image_size=16, **REAL_SMALL)
    return config, f"{BENCH}/{model}"


@needs_real
def test_onet_shapes_without_an_occupancy_source_are_left_out_and_counted(tmp_path, caplog):
    config, lacking = bench_without_one_mesh(tmp_path)
    obj = Path(config.mesh_root) / lacking / "models" / "model_normalized.obj"
    reason = (f"shapenet_onet: 1 of 5 shapes have no occupancy source among ['points', 'voxels', 'mesh'], e.g. "
              f"{lacking}: points needs {REAL / 'shapenet_onet' / lacking / 'points.npz'}, voxels needs {obj}, "
              f"mesh needs {obj}")
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(reason)}; set dataset.skip_missing=true to leave "
                                                 f"them out$"):
        build_onet(dataclasses.replace(config, skip_missing=False), tmp_path / "cache")
    with caplog.at_level(logging.WARNING, logger="harness_plugins.datasets.shapenet_onet.dataset"):
        dataset = build_onet(config, tmp_path / "cache")  # skip_missing is the default, as in shapenetpart
    assert [r.getMessage() for r in caplog.records] == [f"{reason}; left out (dataset.skip_missing=true)"]
    kept = [shape.key for items in dataset.shapes.values() for shape in items]
    assert len(kept) == 4 and lacking not in kept
    assert {shape.source for items in dataset.shapes.values() for shape in items} == {"voxels"}
    assert dataset.split("test")[0]["occupancy"].shape == (REAL_SMALL["query_points"],)
    every = build_onet(dataclasses.replace(config, mesh_root=str(REAL / "shapenetcore_v2")), tmp_path / "cache")
    assert every.info.fingerprint != dataset.info.fingerprint  # the left-out shape is part of the identity


@needs_real
def test_onet_with_no_occupancy_source_at_all_is_an_error(tmp_path):
    config = ShapeNetONetConfig(root=str(REAL / "shapenet_onet"), classes=[BENCH], **REAL_SMALL)
    with pytest.raises(FileNotFoundError, match=r"^shapenet_onet: 5 of 5 shapes have no occupancy source .* \(no "
                                                r"dataset.mesh_root given\)"):
        build_onet(config, tmp_path)


# ----- 4. faces given as triangle strips ------------------------------------------------------------------------

# a zigzag strip in z = 0 and a triangle in z = 1
STRIP_VERTICES = [(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0), (2, 0, 0), (2, 1, 0), (0, 0, 1), (1, 0, 1), (0, 1, 1)]
STRIPS = [
    [0, 1, 2, 3, 4, 5, -1, 6, 7, 8],  # -1 ends the zigzag, the next strip starts afresh
    [0, 1, 2, 3, 3, 6, 6, 7, 8],  # two strips joined by repeated vertices: the degenerate triangles are dropped
    [6, 7, 8],
]
# by hand: (v0,v1,v2), (v2,v1,v3), (v2,v3,v4), (v4,v3,v5) -- every second one reversed -- then (v6,v7,v8);
# the joined row: (0,1,2), (2,1,3), [2,3,3], [3,3,6], [3,6,6], [6,6,7] dropped, (6,7,8); the last row as it is
STRIP_TRIANGLES = [[0, 1, 2], [2, 1, 3], [2, 3, 4], [4, 3, 5], [6, 7, 8],
                   [0, 1, 2], [2, 1, 3], [6, 7, 8],
                   [6, 7, 8]]


def strip_ply(binary: bool, strips: list[list[int]] = STRIPS) -> bytes:
    header = (f"ply\nformat {'binary_little_endian' if binary else 'ascii'} 1.0\ncomment faces as strips\n"
              f"element vertex {len(STRIP_VERTICES)}\nproperty float x\nproperty float y\nproperty float z\n"
              f"element tristrips {len(strips)}\nproperty list int int vertex_indices\nend_header\n").encode()
    if binary:
        body = np.asarray(STRIP_VERTICES, "<f4").tobytes()
        body += b"".join(np.asarray([len(strip), *strip], "<i4").tobytes() for strip in strips)
    else:
        body = "".join(f"{x} {y} {z}\n" for x, y, z in STRIP_VERTICES).encode()
        body += "".join(" ".join(map(str, [len(strip), *strip])) + "\n" for strip in strips).encode()
    return header + body


@pytest.mark.parametrize("binary", [False, True])
def test_tristrips_are_triangulated(binary, tmp_path):
    path = tmp_path / "strips.ply"
    path.write_bytes(strip_ply(binary))
    ply = read_ply(path)
    assert ply.faces.tolist() == STRIP_TRIANGLES
    corners = ply.vertices(path)[ply.faces[:5]]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert normals.tolist() == [[0, 0, -1]] * 4 + [[0, 0, 1]]  # the zigzag winds alike throughout


def test_tristrips_of_three_in_a_binary_file_and_bad_indices(tmp_path):
    path = tmp_path / "strips.ply"
    path.write_bytes(strip_ply(True, [[6, 7, 8], [0, 1, 2]]))  # every list of three: numpy's one-pass read
    assert read_ply(path).faces.tolist() == [[6, 7, 8], [0, 1, 2]]
    path.write_bytes(strip_ply(False, [[0, 1, 2, -2, 4]]))
    with pytest.raises(DataFileError, match=f"^{re.escape(str(path))}: face vertex index -2 outside 0..8$"):
        read_ply(path)


@pytest.mark.parametrize("binary, problem", [(False, re.escape("empty mesh: no faces")),
                                             (True, r"unreadable mesh \(.+\)")])  # trimesh's own words
def test_a_mesh_file_whose_faces_trimesh_cannot_read_names_the_element(binary, problem, tmp_path):
    path = tmp_path / "strips.ply"
    path.write_bytes(strip_ply(binary))
    note = re.escape(" (PLY elements not read: tristrips; faces come from a 'face' element only)")
    with pytest.raises(DataFileError, match=f"^{re.escape(str(path))}: {problem}{note}$"):
        datacache.read_mesh(path)
