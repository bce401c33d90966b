"""The image, video and voxel datasets of issue 4: the synthetic ones (generation, determinism, verified caches,
difficulty) and the real-format loaders (MNIST idx, CIFAR-10 binary, Kinetics frames + CSV) on files the tests
write and on the shared MNIST test set."""
from __future__ import annotations

import functools
import gzip
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import data as keys
from harness.datacache import DataFileError, sha256_file
from harness.registry import default_registry
from harness.specs import Kind
from harness_plugins.datasets.arrays import carve_by_class, crop_flip
from harness_plugins.datasets.synthetic_images.config import SyntheticImagesConfig
from harness_plugins.datasets.synthetic_images.generate import generate_images, image_scene
from harness_plugins.datasets.synthetic_videos.config import PROFILES as VIDEO_PROFILES
from harness_plugins.datasets.synthetic_videos.config import SyntheticVideosConfig
from harness_plugins.datasets.synthetic_videos.generate import generate_clips

REAL_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real" / "mnist"
NEW = ("synthetic_images", "synthetic_videos", "synthetic_voxels", "mnist", "cifar10", "kinetics")


@functools.cache
def registry():
    return default_registry()


def build(name: str, cache: Path | str | None = None, profile: str = "smoke", **overrides):
    spec = registry().get(Kind.DATASET, name)
    config = spec.config(**{**spec.profiles.get(profile, {}), **overrides})
    return spec.build(config, cache_dir=cache if cache is not None else os.environ["HARNESS_CACHE"])


def labels_of(split) -> np.ndarray:
    return np.array([int(split[i][keys.LABEL]) for i in range(len(split))])


# ----- registration ----------------------------------------------------------------------------------------


def test_datasets_are_registered_with_their_capabilities():
    caps = {name: registry().get(Kind.DATASET, name).capabilities for name in NEW}
    assert {n: c.modalities for n, c in caps.items()} == {
        "synthetic_images": ("image",), "synthetic_videos": ("video",), "synthetic_voxels": ("voxels",),
        "mnist": ("image",), "cifar10": ("image",), "kinetics": ("video",)}
    assert all(c.targets == ("label",) for c in caps.values())
    assert {n for n, c in caps.items() if c.synthetic} == {"synthetic_images", "synthetic_videos", "synthetic_voxels"}
    assert {n: c.reference_datasets for n, c in caps.items()} == {
        "synthetic_images": ("CIFAR10",), "synthetic_videos": ("Kinetics-400",), "synthetic_voxels": ("ModelNet40",),
        "mnist": (), "cifar10": ("CIFAR10",), "kinetics": ("Kinetics-400",)}
    for name in NEW:
        assert set(registry().get(Kind.DATASET, name).profiles) == {"smoke", "quick"}


# ----- shared pieces ---------------------------------------------------------------------------------------


def test_crop_flip_pads_with_zeros_crops_and_mirrors():
    image = np.arange(2 * 5 * 6, dtype=np.uint8).reshape(2, 5, 6) + 1
    padded = np.pad(image, ((0, 0), (2, 2), (2, 2)))
    windows = {(top, left, flip): padded[:, top:top + 5, left:left + 6][:, :, ::-1 if flip else 1]
               for top in range(5) for left in range(5) for flip in (False, True)}
    seen = set()
    for seed in range(300):
        out = crop_flip(image, np.random.default_rng(seed), padding=2)
        assert out.shape == image.shape and out.dtype == image.dtype
        matches = [key for key, window in windows.items() if np.array_equal(out, window)]
        assert matches, seed
        seen.update(matches)
    assert len(seen) == len(windows)  # every offset, flipped and not
    unpadded = {crop_flip(image, np.random.default_rng(seed), padding=0).tobytes() for seed in range(20)}
    assert unpadded == {image.tobytes(), image[:, :, ::-1].tobytes()}


def test_carve_by_class_keeps_classes_balanced_and_is_seeded():
    labels = np.repeat(np.arange(4), 50)
    parts = carve_by_class(labels, {"train": 0.9, "val": 0.1}, seed=0)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(200))
    assert [int((labels[parts["val"]] == k).sum()) for k in range(4)] == [5, 5, 5, 5]
    assert np.array_equal(parts["val"], carve_by_class(labels, {"train": 0.9, "val": 0.1}, seed=0)["val"])
    assert not np.array_equal(parts["val"], carve_by_class(labels, {"train": 0.9, "val": 0.1}, seed=1)["val"])


# ----- synthetic images ------------------------------------------------------------------------------------


def test_synthetic_images_items_shapes_ranges_and_balance():
    dataset = build("synthetic_images")
    info = dataset.info
    assert info.input_shapes == {"image": (3, 32, 32)} and info.modalities == ("image",)
    assert len(info.classes) == 10 and info.splits == ("train", "val", "test")
    for split, per_class in (("train", 10), ("val", 2), ("test", 4)):
        data = dataset.split(split)
        labels = labels_of(data)
        assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10
        item = data[3]
        assert item[keys.IMAGE].shape == (3, 32, 32) and item[keys.IMAGE].dtype == torch.float32
        assert 0 <= item[keys.IMAGE].min() and item[keys.IMAGE].max() <= 1
        assert item[keys.LABEL].dtype == torch.int64 and item[keys.LABEL].ndim == 0 and int(item[keys.INDEX]) == 3
    assert dataset.mesh_path("test", 0) is None
    with pytest.raises(IndexError):
        dataset.mesh_path("test", 40)
    with pytest.raises(KeyError):
        dataset.split("validation")


def test_synthetic_images_are_the_generated_ones_and_training_items_are_cropped_and_flipped():
    dataset = build("synthetic_images")
    stored = generate_images(dataset.config, "val", [1])[0]
    assert torch.equal(dataset.split("val")[1][keys.IMAGE], torch.from_numpy(stored.astype(np.float32) / 255))
    assert torch.equal(dataset.split("val")[1][keys.IMAGE], dataset.split("val")[1][keys.IMAGE])  # fixed
    plain = build("synthetic_images", augment=False).split("train")
    original = generate_images(dataset.config, "train", [5])[0]
    assert torch.equal(plain[5][keys.IMAGE], torch.from_numpy(original.astype(np.float32) / 255))
    padded = np.pad(original, ((0, 0), (4, 4), (4, 4)))
    windows = [padded[:, top:top + 32, left:left + 32] for top in range(9) for left in range(9)]
    draws = []
    for seed in range(12):
        torch.manual_seed(seed)
        drawn = np.rint(dataset.split("train")[5][keys.IMAGE].numpy() * 255).astype(np.uint8)
        assert any(np.array_equal(drawn, w) or np.array_equal(drawn, w[:, :, ::-1]) for w in windows), seed
        draws.append(drawn.tobytes())
    assert len(set(draws)) > 6


def test_synthetic_images_depend_only_on_seed_split_and_index():
    config = SyntheticImagesConfig(train_per_class=2, val_per_class=1, test_per_class=1)
    batch = generate_images(config, "train", range(12))
    assert np.array_equal(generate_images(config, "train", [7])[0], batch[7])
    assert np.array_equal(generate_images(config, "train", range(12)), batch)
    assert not np.array_equal(generate_images(config, "test", [7])[0], batch[7])
    other = SyntheticImagesConfig(seed=1, train_per_class=2, val_per_class=1, test_per_class=1)
    assert not np.array_equal(generate_images(other, "train", [7])[0], batch[7])


def manifest_files(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())["files"]


def test_synthetic_images_cache_is_verified_and_a_damaged_chunk_is_rebuilt(tmp_path):
    first = build("synthetic_images", tmp_path / "a", workers=1)
    directory = first.directory
    files = manifest_files(directory)
    assert sorted(files) == ["test/00000.npy", "train/00000.npy", "val/00000.npy"]
    twin = build("synthetic_images", tmp_path / "b", workers=1)  # generated again elsewhere: the same bytes
    assert {k: v["sha256"] for k, v in manifest_files(twin.directory).items()} == \
        {k: v["sha256"] for k, v in files.items()}
    chunk = directory / "train/00000.npy"
    data = bytearray(chunk.read_bytes())
    data[-100:] = bytes(100)  # same size, different content (and a new mtime)
    chunk.write_bytes(bytes(data))
    assert sha256_file(chunk) != files["train/00000.npy"]["sha256"]
    build("synthetic_images", tmp_path / "a", workers=1)
    assert sha256_file(chunk) == files["train/00000.npy"]["sha256"]
    (directory / "val/00000.npy").unlink()
    rebuilt = build("synthetic_images", tmp_path / "a", workers=1)
    assert sha256_file(directory / "val/00000.npy") == files["val/00000.npy"]["sha256"]
    assert torch.equal(rebuilt.split("val")[0][keys.IMAGE], first.split("val")[0][keys.IMAGE])
    # damage that keeps size and mtime is only found by hashing every file
    stat = chunk.stat()
    chunk.write_bytes(bytes(data))
    os.utime(chunk, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    build("synthetic_images", tmp_path / "a", workers=1)
    assert sha256_file(chunk) != files["train/00000.npy"]["sha256"]
    build("synthetic_images", tmp_path / "a", workers=1, checksum_all=True)
    assert sha256_file(chunk) == files["train/00000.npy"]["sha256"]


def pose_aligned(config: SyntheticImagesConfig, split: str, images: np.ndarray) -> np.ndarray:
    """Each image resampled on a 16x16 grid over its shape's own (generator-known) pose, as contrast against the
    patch border: what is left once position, rotation, size and colours are undone."""
    grey = images.astype(np.float64).mean(axis=1)
    side = np.linspace(-1.1, 1.1, 16)
    u, v = np.meshgrid(side, side)
    rows = []
    for index, image in enumerate(grey):
        scene = image_scene(config, split, index)
        cx, cy, angle, radius = (float(scene[name][0]) for name in ("cx", "cy", "angle", "radius"))
        x = cx + radius * (np.cos(angle) * u - np.sin(angle) * v)
        y = cy + radius * (np.sin(angle) * u + np.cos(angle) * v)
        patch = image[np.clip(np.floor(y).astype(int), 0, 31), np.clip(np.floor(x).astype(int), 0, 31)]
        contrast = np.abs(patch - np.median(np.concatenate([patch[[0, -1]].ravel(), patch[:, [0, -1]].ravel()])))
        rows.append(contrast.ravel() / (contrast.mean() + 1e-6))
    return np.array(rows)


def nearest_class_mean(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray) -> float:
    means = np.stack([train[train_labels == k].mean(axis=0) for k in np.unique(train_labels)])
    distances = (test ** 2).sum(1)[:, None] - 2 * test @ means.T + (means ** 2).sum(1)[None]
    return float(np.mean(distances.argmin(axis=1) == test_labels))


def test_synthetic_images_are_not_separable_from_raw_pixels_but_the_shape_is_there():
    config = SyntheticImagesConfig()
    train, test = generate_images(config, "train", range(600)), generate_images(config, "test", range(400))
    train_labels, test_labels = np.arange(600) % 10, np.arange(400) % 10
    raw = nearest_class_mean(train.reshape(600, -1) / 255, train_labels, test.reshape(400, -1) / 255, test_labels)
    # measured 0.135 here (0.08-0.135 over seeds 0-2): chance is 0.1; pose, colours and clutter hide the class
    assert 0.05 <= raw <= 0.25
    aligned = nearest_class_mean(pose_aligned(config, "train", train), train_labels,
                                 pose_aligned(config, "test", test), test_labels)
    # measured 0.855 (0.845-0.865): with the pose undone the shape shows, but texture, clutter, occlusion and
    # noise keep even this far from 100%
    assert 0.6 <= aligned <= 0.95


# ----- synthetic videos ------------------------------------------------------------------------------------


def test_synthetic_videos_items_shapes_ranges_balance_and_determinism():
    dataset = build("synthetic_videos")
    assert dataset.info.input_shapes == {"video": (3, 8, 32, 32)} and len(dataset.info.classes) == 10
    for split, per_class in (("train", 2), ("val", 1), ("test", 1)):
        data = dataset.split(split)
        assert np.bincount(labels_of(data), minlength=10).tolist() == [per_class] * 10
    item = dataset.split("train")[13]
    assert item[keys.VIDEO].shape == (3, 8, 32, 32) and item[keys.VIDEO].dtype == torch.float32
    assert 0 <= item[keys.VIDEO].min() and item[keys.VIDEO].max() <= 1 and int(item[keys.LABEL]) == 3
    clip = generate_clips(dataset.config, "train", [13])[0]
    assert torch.equal(item[keys.VIDEO], torch.from_numpy(clip.astype(np.float32) / 255))
    assert np.array_equal(generate_clips(dataset.config, "train", range(10, 16))[3], clip)
    assert not np.array_equal(clip[:, 0], clip[:, -1])  # it moves


@pytest.mark.parametrize("difficulty", ["standard", "easy"])
def test_synthetic_videos_need_time_a_single_frame_does_not_tell_the_class(difficulty):
    config = SyntheticVideosConfig(**{**VIDEO_PROFILES["quick"], "difficulty": difficulty}).resolved()
    train, test = generate_clips(config, "train", range(160)) / 255, generate_clips(config, "test", range(100)) / 255
    train_labels, test_labels = np.arange(160) % 10, np.arange(100) % 10

    def standardised(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = a.mean(0), a.std(0) + 1e-9
        return (a - mean) / std, (b - mean) / std

    def frame_spectra(clips: np.ndarray) -> np.ndarray:
        """Per frame, the power spectrum of the grey frame (what it shows, wherever it is), averaged over time."""
        grey = clips.mean(axis=1)
        grey = grey - grey.mean(axis=(-2, -1), keepdims=True)
        return np.log1p(np.abs(np.fft.rfft2(grey)) ** 2).mean(axis=1).reshape(len(clips), -1)

    def motion(clips: np.ndarray) -> np.ndarray:
        """Frame-to-frame shifts by phase correlation (static background removed), summarised: mean shift,
        mean absolute shift, turning (cross product of successive shifts) and persistence (their dot product)."""
        grey = clips.mean(axis=1)
        grey = grey - grey.mean(axis=1, keepdims=True)
        spectra = np.fft.fft2(grey)
        cross = spectra[:, 1:] * np.conj(spectra[:, :-1])
        peak = np.real(np.fft.ifft2(cross / (np.abs(cross) + 1e-9)))
        size = grey.shape[-1]
        dy, dx = np.divmod(peak.reshape(*peak.shape[:2], -1).argmax(-1), size)
        d = np.stack([(dx + size // 2) % size - size // 2, (dy + size // 2) % size - size // 2], -1).astype(float)
        turning = d[:, 1:, 0] * d[:, :-1, 1] - d[:, 1:, 1] * d[:, :-1, 0]
        persistence = (d[:, 1:] * d[:, :-1]).sum(-1)
        return np.c_[d.mean(1), np.abs(d).mean(1), turning.mean(1), persistence.mean(1)]

    appearance = nearest_class_mean(*standardised(frame_spectra(train), frame_spectra(test))[:1], train_labels,
                                    standardised(frame_spectra(train), frame_spectra(test))[1], test_labels)
    moving = nearest_class_mean(*standardised(motion(train), motion(test))[:1], train_labels,
                                standardised(motion(train), motion(test))[1], test_labels)
    # standard: measured 0.06 (0.06-0.13 over seeds 0-3); easy: 0.13; chance is 0.1
    assert appearance <= 0.25
    # standard: measured 0.64 (0.55-0.66); easy: 0.77; these shift features cannot tell rotate_cw, rotate_ccw and
    # pulse apart
    assert moving >= 0.45


# ----- synthetic voxels ------------------------------------------------------------------------------------


def test_synthetic_voxels_match_the_shapes_occupancy():
    from harness.datacache import load_npz, shape_files
    from harness.geometry.inside import contains
    from harness_plugins.datasets.synthetic_voxels.voxelize import grid_points, voxel_centres

    dataset = build("synthetic_voxels")
    shapes = build("synthetic_shapes")  # the same shapes, from the same (shared) cache
    assert dataset.shapes.directory == shapes.directory
    assert dataset.info.input_shapes == {"voxels": (1, 32, 32, 32)}
    assert dataset.info.classes == shapes.info.classes
    for split, per_class in (("train", 2), ("val", 1), ("test", 1)):
        assert np.bincount(labels_of(dataset.split(split)), minlength=8).tolist() == [per_class] * 8
    for split, index in (("train", 0), ("train", 5), ("test", 3)):
        item = dataset.split(split)[index]
        grid = item[keys.VOXELS]
        assert grid.shape == (1, 32, 32, 32) and grid.dtype == torch.float32 and set(grid.unique().tolist()) == {0, 1}
        stored = load_npz(shapes.directory / shape_files(split, index)[0],
                          ("vertices", "faces", "occ_points", "occupancy", "n_uniform", "label"))
        assert int(item[keys.LABEL]) == int(stored["label"])
        # every voxel is the exact inside test of its centre against the cached mesh
        exact = contains(stored["vertices"], stored["faces"], grid_points(32, 0.1), watertight=True)
        assert np.array_equal(grid.numpy().reshape(-1).astype(bool), exact)
        # and the voxel holding each cached uniform occupancy sample mostly agrees with its label
        points = stored["occ_points"][:int(stored["n_uniform"])]
        centres = voxel_centres(32, 0.1)
        cell = np.clip(np.rint((points + 0.55) / 1.1 * 32 - 0.5).astype(int), 0, 31)
        assert np.allclose(centres[cell], points, atol=1.1 / 64 + 1e-6)
        agree = grid.numpy()[0][cell[:, 0], cell[:, 1], cell[:, 2]].astype(bool) == stored["occupancy"][:len(points)]
        assert agree.mean() > 0.95
    assert dataset.mesh_path("train", 0) == shapes.mesh_path("train", 0)


def test_synthetic_voxels_rotation_turns_about_the_up_axis():
    from harness_plugins.datasets.synthetic_voxels.voxelize import rotate_up

    grid = np.zeros((1, 8, 8, 8), dtype=np.uint8)
    grid[0, 6, 2, 4] = 1  # x=6, y=2, z=4
    turned = [rotate_up(grid, np.random.default_rng(seed)) for seed in range(20)]
    for out in turned:
        assert out.shape == grid.shape and out.sum() <= 2
        ys = np.nonzero(out[0])[1]
        assert set(ys.tolist()) <= {2}  # heights are kept
    assert len({out.tobytes() for out in turned}) > 5
    turning = build("synthetic_voxels", rotate=True).split("train")
    plain = build("synthetic_voxels").split("train")[0][keys.VOXELS]
    draws = []
    for seed in range(4):
        torch.manual_seed(seed)
        item = turning[0][keys.VOXELS]
        assert item.shape == plain.shape and abs(float(item.sum() - plain.sum())) < 0.3 * float(plain.sum())
        assert torch.equal(item.sum(dim=(1, 3)) > 0, plain.sum(dim=(1, 3)) > 0)  # the same heights are filled
        draws.append(item)
    assert not all(torch.equal(d, plain) for d in draws)
    assert torch.equal(build("synthetic_voxels", rotate=True).split("val")[0][keys.VOXELS],
                       build("synthetic_voxels").split("val")[0][keys.VOXELS])  # only training items turn


# ----- MNIST -----------------------------------------------------------------------------------------------


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool) -> Path:
    data = idx_bytes(array, magic)
    path = path.with_name(path.name + ".gz") if compress else path
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def independent_mnist(name: str) -> np.ndarray:
    with gzip.open(REAL_MNIST / f"{name}.gz") as stream:
        data = stream.read()
    if "labels" in name:
        assert int.from_bytes(data[:4], "big") == 2049
        return np.frombuffer(data, np.uint8, offset=8)
    assert int.from_bytes(data[:4], "big") == 2051
    count, rows, cols = (int.from_bytes(data[4 * i:4 * i + 4], "big") for i in (1, 2, 3))
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)


@pytest.mark.skipif(not REAL_MNIST.is_dir(), reason="no shared MNIST sample")
def test_mnist_on_the_shared_test_set(tmp_path):
    from harness_plugins.datasets.mnist.dataset import read_set

    images, labels = read_set(REAL_MNIST / "t10k-images-idx3-ubyte.gz", REAL_MNIST / "t10k-labels-idx1-ubyte.gz")
    truth_images, truth_labels = independent_mnist("t10k-images-idx3-ubyte"), independent_mnist("t10k-labels-idx1-ubyte")
    assert labels[:10].tolist() == truth_labels[:10].tolist() and labels[0] == 7
    assert images.shape == (10000, 1, 28, 28) and np.array_equal(images[:, 0], truth_images)
    # only the test set: a clear error, unless train/val/test may be carved from it
    with pytest.raises(FileNotFoundError, match="carve_from_test"):
        build("mnist", root=str(REAL_MNIST))
    carved = build("mnist", root=str(REAL_MNIST), carve_from_test=True, max_per_class=0)
    sizes = {split: len(carved.split(split)) for split in carved.info.splits}
    assert sum(sizes.values()) == 10000 and sizes["train"] > sizes["test"] > sizes["val"] > 900
    assert carved.info.input_shapes == {"image": (1, 28, 28)}
    position = int(carved.indices["test"][0])
    item = carved.split("test")[0]
    assert int(item[keys.LABEL]) == truth_labels[position]
    assert torch.equal(item[keys.IMAGE][0], torch.from_numpy(truth_images[position].astype(np.float32) / 255))
    # with training files beside it, test is the whole t10k set in order
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).symlink_to(REAL_MNIST / name)
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (120, 28, 28)), 2051, compress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.arange(120) % 10, 2049, compress=False)
    full = build("mnist", root=str(tmp_path), max_per_class=0)
    assert len(full.split("test")) == 10000 and len(full.split("train")) + len(full.split("val")) == 120
    assert int(full.split("test")[0][keys.LABEL]) == 7
    assert torch.equal(full.split("test")[9][keys.IMAGE][0], torch.from_numpy(truth_images[9].astype(np.float32) / 255))


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_written_idx_files(tmp_path, compress):
    rng = np.random.default_rng(1)
    train, test = rng.integers(0, 256, (60, 28, 28)), rng.integers(0, 256, (20, 28, 28))
    train_labels, test_labels = np.arange(60) % 10, (np.arange(20) * 3) % 10
    write_idx(tmp_path / "train-images-idx3-ubyte", train, 2051, compress)
    write_idx(tmp_path / "train-labels-idx1-ubyte", train_labels, 2049, compress)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", test, 2051, compress)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", test_labels, 2049, compress)
    dataset = build("mnist", root=str(tmp_path), val_fraction=0.2, max_per_class=0)
    assert [len(dataset.split(s)) for s in ("train", "val", "test")] == [50, 10, 20]
    assert np.bincount(labels_of(dataset.split("val")), minlength=10).tolist() == [1] * 10
    for i in (0, 7, 19):
        item = dataset.split("test")[i]
        assert int(item[keys.LABEL]) == test_labels[i]
        assert torch.equal(item[keys.IMAGE], torch.from_numpy(test[i][None].astype(np.float32) / 255))
    val = dataset.split("val")
    position = int(dataset.indices["val"][0])
    assert torch.equal(val[0][keys.IMAGE][0], torch.from_numpy(train[position].astype(np.float32) / 255))
    assert sorted(dataset.indices["train"].tolist() + dataset.indices["val"].tolist()) == list(range(60))
    smoke = build("mnist", root=str(tmp_path), val_fraction=0.2, max_per_class=1)
    assert len(smoke.split("test")) == len(set(test_labels.tolist()))


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_malformed_idx_files_name_the_file(tmp_path, compress):
    rng = np.random.default_rng(2)
    images, labels = rng.integers(0, 256, (10, 28, 28)), np.arange(10) % 10

    def write_all(**broken: bytes) -> None:
        files = {"train-images-idx3-ubyte": idx_bytes(images, 2051), "train-labels-idx1-ubyte": idx_bytes(labels, 2049),
                 "t10k-images-idx3-ubyte": idx_bytes(images, 2051), "t10k-labels-idx1-ubyte": idx_bytes(labels, 2049)}
        files.update(broken)
        for path in tmp_path.iterdir():
            path.unlink()
        for name, data in files.items():
            (tmp_path / (name + (".gz" if compress else ""))).write_bytes(gzip.compress(data) if compress else data)

    cases = {
        "truncated": ("train-images-idx3-ubyte", idx_bytes(images, 2051)[:-5], "truncated"),
        "magic": ("t10k-labels-idx1-ubyte", idx_bytes(labels, 2051), "magic number 2051, expected 2049"),
        "header": ("t10k-images-idx3-ubyte", idx_bytes(images, 2051)[:10], "header truncated"),
        "count": ("train-labels-idx1-ubyte", idx_bytes(labels[:7], 2049), "7 labels"),
        "label": ("t10k-labels-idx1-ubyte", idx_bytes(np.full(10, 12), 2049), "label 12"),
    }
    for name, data, message in cases.values():
        write_all(**{name: data})
        with pytest.raises(DataFileError, match=message) as info:
            build("mnist", root=str(tmp_path))
        assert info.value.path.name.startswith(name)
    if compress:  # a gzip stream cut short
        write_all()
        path = tmp_path / "t10k-images-idx3-ubyte.gz"
        path.write_bytes(path.read_bytes()[:200])
        with pytest.raises(DataFileError, match="gzip") as info:
            build("mnist", root=str(tmp_path))
        assert info.value.path == path


# ----- CIFAR-10 ----------------------------------------------------------------------------------------------


def cifar_records(labels: list[int], rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    pixels = rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    records = np.concatenate([np.asarray(labels, np.uint8)[:, None], pixels], axis=1)
    return records.tobytes(), pixels


def write_cifar(root: Path, rng: np.random.Generator, per_batch: int = 20) -> dict[str, tuple[list[int], np.ndarray]]:
    root.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        data, pixels = cifar_records(labels, rng)
        (root / name).write_bytes(data)
        written[name] = (labels, pixels)
    return written


def test_cifar10_reads_written_binary_batches(tmp_path):
    rng = np.random.default_rng(3)
    written = write_cifar(tmp_path / "cifar-10-batches-bin", rng)
    # known pixels in the first test record: R at (row 2, col 5), G at (7, 1), B at (31, 31)
    labels, pixels = written["test_batch.bin"]
    record = np.zeros(3073, np.uint8)
    record[0] = 4
    record[1 + 2 * 32 + 5] = 200
    record[1 + 1024 + 7 * 32 + 1] = 100
    record[1 + 2048 + 31 * 32 + 31] = 50
    data = bytearray((tmp_path / "cifar-10-batches-bin" / "test_batch.bin").read_bytes())
    data[:3073] = record.tobytes()
    (tmp_path / "cifar-10-batches-bin" / "test_batch.bin").write_bytes(bytes(data))
    dataset = build("cifar10", root=str(tmp_path), max_per_class=0)  # the parent of cifar-10-batches-bin works
    assert dataset.info.input_shapes == {"image": (3, 32, 32)}
    assert dataset.info.classes[:3] == ("airplane", "automobile", "bird")
    item = dataset.split("test")[0]
    image = item[keys.IMAGE]
    assert int(item[keys.LABEL]) == 4 and image.shape == (3, 32, 32)
    assert image[0, 2, 5] == pytest.approx(200 / 255) and image[1, 7, 1] == pytest.approx(100 / 255)
    assert image[2, 31, 31] == pytest.approx(50 / 255)
    assert float(image.sum()) == pytest.approx((200 + 100 + 50) / 255, rel=1e-5)
    second = dataset.split("test")[1]
    assert int(second[keys.LABEL]) == labels[1]
    assert torch.equal(second[keys.IMAGE], torch.from_numpy(pixels[1].reshape(3, 32, 32).astype(np.float32) / 255))
    assert len(dataset.split("train")) + len(dataset.split("val")) == 100 and len(dataset.split("test")) == 20
    # training items: the stored image, cropped and flipped (the synthetic images' code)
    position = int(dataset.indices["train"][0])
    batch, row = divmod(position, 20)
    original = written[f"data_batch_{batch + 1}.bin"][1][row].reshape(3, 32, 32)
    plain = build("cifar10", root=str(tmp_path), max_per_class=0, augment=False).split("train")[0][keys.IMAGE]
    assert torch.equal(plain, torch.from_numpy(original.astype(np.float32) / 255))
    padded = np.pad(original, ((0, 0), (4, 4), (4, 4)))
    torch.manual_seed(1)
    drawn = np.rint(dataset.split("train")[0][keys.IMAGE].numpy() * 255).astype(np.uint8)
    assert any(np.array_equal(drawn, padded[:, t:t + 32, s:s + 32]) or np.array_equal(drawn, padded[:, t:t + 32, s:s + 32][:, :, ::-1])
               for t in range(9) for s in range(9))
    # class names from batches.meta.txt
    names = [f"class{i}" for i in range(10)]
    (tmp_path / "cifar-10-batches-bin" / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    assert build("cifar10", root=str(tmp_path)).info.classes == tuple(names)


def test_cifar10_malformed_batches_name_the_file_and_record(tmp_path):
    rng = np.random.default_rng(4)
    write_cifar(tmp_path, rng, per_batch=5)
    path = tmp_path / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataFileError, match=r"not a whole number of 3073-byte records.*record 4") as info:
        build("cifar10", root=str(tmp_path))
    assert info.value.path == path
    write_cifar(tmp_path, rng, per_batch=5)
    data = bytearray((tmp_path / "test_batch.bin").read_bytes())
    data[2 * 3073] = 10
    (tmp_path / "test_batch.bin").write_bytes(bytes(data))
    with pytest.raises(DataFileError, match="record 2 .*label 10") as info:
        build("cifar10", root=str(tmp_path))
    assert info.value.path.name == "test_batch.bin"
    write_cifar(tmp_path, rng, per_batch=5)
    (tmp_path / "batches.meta.txt").write_text("a\nb\n")
    with pytest.raises(DataFileError, match="2 class names"):
        build("cifar10", root=str(tmp_path))
    (tmp_path / "batches.meta.txt").unlink()
    (tmp_path / "data_batch_5.bin").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_5.bin"):
        build("cifar10", root=str(tmp_path))


# ----- Kinetics ----------------------------------------------------------------------------------------------


def write_frames(folder: Path, count: int, suffix: str) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for k in range(count):
        pixels = np.zeros((20, 24, 3), np.uint8)
        pixels[..., 0] = 20 * (k + 1)  # frame k is red 20 (k + 1)
        pixels[..., 1] = 255 - 20 * k
        Image.fromarray(pixels).save(folder / f"img_{k + 1:05d}{suffix}", quality=95)


CSV_HEADER = "label,youtube_id,time_start,time_end,split\n"


def write_kinetics(root: Path) -> None:
    rows = [("abseiling", "aaa", 10, 20, "train"), ("abseiling", "bbb", 0, 10, "train"),
            ("air drumming", "ccc", 5, 15, "train"), ("air drumming", "ddd", 30, 40, "train"),
            ("abseiling", "eee", 1, 11, "val"), ("air drumming", "fff", 2, 12, "val"),
            ("air drumming", "ggg", 3, 13, "train")]  # ggg has no frames
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "kinetics_400.csv").write_text(
        CSV_HEADER + "".join(f'"{label}",{vid},{start},{end},{split}\n' for label, vid, start, end, split in rows))
    frames = root / "frames"
    write_frames(frames / "train" / "aaa_000010_000020", 8, ".png")
    write_frames(frames / "train" / "abseiling" / "bbb_000000_000010", 8, ".png")  # with a label level
    write_frames(frames / "train" / "air_drumming" / "ccc_000005_000015", 5, ".jpg")
    write_frames(frames / "train" / "ddd_000030_000040", 12, ".jpg")
    write_frames(frames / "validate" / "eee_000001_000011", 8, ".png")  # the split spelt as in Kinetics' files
    write_frames(frames / "val" / "fff_000002_000012", 3, ".png")


def test_kinetics_reads_frames_and_annotations(tmp_path, caplog):
    from harness_plugins.datasets.kinetics.dataset import sample_positions

    write_kinetics(tmp_path)
    with caplog.at_level(logging.WARNING):
        dataset = build("kinetics", root=str(tmp_path), clip_length=4, frame_size=16, val_fraction=0.5,
                        max_per_class=0)
    assert "1 annotated clips have no frame folder" in caplog.text and "ggg_000003_000013" in caplog.text
    assert dataset.info.classes == ("abseiling", "air drumming")
    assert dataset.info.input_shapes == {"video": (3, 4, 16, 16)}
    sizes = {split: len(dataset.split(split)) for split in dataset.info.splits}
    assert sizes == {"train": 2, "val": 2, "test": 2}
    test = dataset.split("test")
    names = [folder.name for folder, _ in dataset.clips["test"]]
    assert names == ["eee_000001_000011", "fff_000002_000012"]
    first = test[0]
    video = first[keys.VIDEO]
    assert video.shape == (3, 4, 16, 16) and video.dtype == torch.float32 and int(first[keys.LABEL]) == 0
    # 8 frames, 4 samples at the segment centres: frames 1, 3, 5, 7 (0-based), red 20 (k + 1)
    assert sample_positions(8, 4, None).tolist() == [1, 3, 5, 7]
    assert torch.allclose(video[0, :, 5, 5], torch.tensor([40.0, 80.0, 120.0, 160.0]) / 255)
    short = test[1][keys.VIDEO]  # 3 frames for 4 samples: repeats
    assert sample_positions(3, 4, None).tolist() == [0, 1, 1, 2]
    assert torch.allclose(short[0, :, 0, 0], torch.tensor([20.0, 40.0, 40.0, 60.0]) / 255)
    train = dataset.split("train")
    for i in range(len(train)):
        clip = train[i][keys.VIDEO]
        assert clip.shape == (3, 4, 16, 16) and 0 <= clip.min() and clip.max() <= 1
    rng = np.random.default_rng(0)
    drawn = sample_positions(12, 4, rng)
    assert all(3 * i <= p < 3 * (i + 1) for i, p in enumerate(drawn.tolist()))
    assert dataset.mesh_path("test", 1) is None


def test_kinetics_malformed_annotations_name_the_file_and_line(tmp_path):
    write_kinetics(tmp_path)
    path = tmp_path / "annotations" / "kinetics_400.csv"
    good = path.read_text()
    path.write_text(good.replace("time_end,", "end,", 1))
    with pytest.raises(DataFileError, match=r"kinetics_400.csv:1: missing column\(s\) \['time_end'\]"):
        build("kinetics", root=str(tmp_path))
    lines = good.splitlines(keepends=True)
    path.write_text("".join(lines[:3] + ['"abseiling",xyz,ten,20,train\n'] + lines[3:]))
    with pytest.raises(DataFileError, match=r"kinetics_400.csv:4: time_start 'ten' is not a number") as info:
        build("kinetics", root=str(tmp_path))
    assert info.value.path == path and info.value.line == 4
    path.write_text("".join(lines[:2] + ['"abseiling",xyz,1\n'] + lines[2:]))
    with pytest.raises(DataFileError, match=r"kinetics_400.csv:3: 3 fields, expected 5"):
        build("kinetics", root=str(tmp_path))
    path.write_text(good + '"abseiling",xyz,1,2,holdout\n')
    with pytest.raises(DataFileError, match=r"kinetics_400.csv:9: unknown split 'holdout'"):
        build("kinetics", root=str(tmp_path))
    path.write_text(good)
    with pytest.raises(FileNotFoundError, match="annotation files"):
        build("kinetics", root=str(tmp_path), annotations=["missing.csv"])
