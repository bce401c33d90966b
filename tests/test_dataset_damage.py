"""Dataset-level reliability: cached files damaged behind the manifest's back, items listed in several splits,
shapes missing a source file, PLY faces given as triangle strips."""
from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from harness_plugins.datasets.scenenn import SceneNNConfig
from harness_plugins.datasets.scenenn.dataset import build as build_scenenn
from harness_plugins.datasets.shapenet_onet import ShapeNetONetConfig
from harness_plugins.datasets.shapenet_onet.dataset import build as build_onet
from harness_plugins.datasets.synthetic_shapes import SyntheticShapesConfig
from harness_plugins.datasets.synthetic_shapes.dataset import build as build_shapes

from harness import datacache
from harness.datacache import DataFileError, read_arrays, shape_files
from tests.test_real_datasets import REAL, TABLE, needs_real
from tests.test_real_datasets import SMALL as REAL_SMALL
from tests.test_scene_datasets import SMALL as SCENE_SMALL
from tests.test_scene_datasets import write_scenenn

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
