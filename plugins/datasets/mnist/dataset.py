"""The ``mnist`` dataset: LeCun's idx files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``; each plain or gzip-compressed, ``.gz``; the
``train-images.idx3-ubyte`` spelling is accepted too).

Each file is checked when the dataset is built (see :mod:`.idx`): magic numbers (2051 images, 2049 labels),
3 dimensions for images and 1 for labels, the byte count the sizes imply, the same number of images and
labels, the same image size in both sets and labels in 0..9; a bad file raises a
:class:`~harness.datacache.DataFileError` naming it.

Splits: ``test`` is the t10k set; ``train`` and ``val`` are carved from the training set per class
(``val_fraction``, by a seeded hash of each image's position). A copy with only the t10k files (like the
shared sample, which has only the test set) is an error naming the missing files unless
``carve_from_test=true``: then all three splits are carved from the t10k set per class by
``split_fractions``. Items: ``image`` ``[1, 28, 28]`` float32 in [0, 1], ``label``, ``index``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import data as keys
from harness.data import DatasetInfo
from harness.datacache import DataFileError, file_stats, fingerprint, plain_copy, require_root

from ..arrays import LoadedImages, carve_by_class, first_per_class
from .config import LAYOUT, LOADER_VERSION, MnistConfig
from .idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

NAME = "mnist"
CLASSES = tuple(str(digit) for digit in range(10))
FILES = {("train", "images"): "train-images-idx3-ubyte", ("train", "labels"): "train-labels-idx1-ubyte",
         ("t10k", "images"): "t10k-images-idx3-ubyte", ("t10k", "labels"): "t10k-labels-idx1-ubyte"}


def find(root: Path, name: str) -> Path | None:
    """The file of ``name`` in ``root``: as named, ``.gz``, or with the dot spelling (``train-images.idx3-ubyte``)."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name, f"{name}.gz", dotted, f"{dotted}.gz"):
        if (root / candidate).is_file():
            return root / candidate
    return None


def read_set(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``uint8 [N, 1, H, W]`` images and ``int64 [N]`` labels of one set, checked against each other."""
    images = read_idx(images_path, IMAGES_MAGIC, "MNIST images")
    labels = read_idx(labels_path, LABELS_MAGIC, "MNIST labels")
    if len(images) != len(labels):
        raise DataFileError(labels_path, f"{len(labels)} labels, but {images_path.name} has {len(images)} images")
    if images.shape[1] < 1 or images.shape[2] < 1:
        raise DataFileError(images_path, f"images of {images.shape[1]}x{images.shape[2]} pixels")
    bad = np.flatnonzero(labels > 9)
    if len(bad):
        raise DataFileError(labels_path, f"label {labels[bad[0]]} of item {bad[0]} is not a digit 0..9")
    return images[:, None], labels.astype(np.int64)


def build(config: MnistConfig, cache_dir: str | Path) -> LoadedImages:
    """Validate ``config``, read and check the idx files under ``config.root``, and carve the splits."""
    del cache_dir  # nothing is derived: the files are read directly
    config = plain_copy(config, MnistConfig)
    config.validate()
    root = require_root(NAME, config.root, LAYOUT)
    found = {key: find(root, name) for key, name in FILES.items()}

    def missing(group: str) -> list[str]:
        return [f"{FILES[(group, kind)]}[.gz]" for kind in ("images", "labels") if found[(group, kind)] is None]

    if missing("t10k"):
        raise FileNotFoundError(f"{NAME}: {root} lacks {missing('t10k')} (expected layout: {LAYOUT})")
    test_images, test_labels = read_set(found[("t10k", "images")], found[("t10k", "labels")])
    if len(missing("train")) == 1:
        raise FileNotFoundError(f"{NAME}: {root} has one training file but lacks {missing('train')}")
    if missing("train") and not config.carve_from_test:
        raise FileNotFoundError(
            f"{NAME}: {root} has only the test set (t10k files); the training files {missing('train')} are missing. "
            f"Add them, or set dataset.carve_from_test=true to carve train/val/test from the test set by "
            f"dataset.split_fractions (results are then not comparable with published MNIST figures)")
    if missing("train"):
        images, labels = test_images, test_labels
        indices = carve_by_class(labels, config.split_fractions, config.seed)
        used = [found[("t10k", kind)] for kind in ("images", "labels")]
    else:
        train_images, train_labels = read_set(found[("train", "images")], found[("train", "labels")])
        if train_images.shape[1:] != test_images.shape[1:]:
            raise DataFileError(found[("t10k", "images")], f"images of shape {test_images.shape[2:]}, but the training "
                                                          f"images are {train_images.shape[2:]}")
        parts = carve_by_class(train_labels, {"train": 1 - config.val_fraction, "val": config.val_fraction},
                               config.seed)
        images = np.concatenate([train_images, test_images])
        labels = np.concatenate([train_labels, test_labels])
        indices = {**parts, "test": np.arange(len(test_labels)) + len(train_labels)}
        used = list(found.values())
    indices = {split: first_per_class(chosen, labels, config.max_per_class) for split, chosen in indices.items()}
    identity = fingerprint({"dataset": NAME, "loader_version": LOADER_VERSION, "config": config.params(),
                            "files": file_stats(root, used)})
    info = DatasetInfo(name=NAME, modalities=(keys.IMAGE,), targets=(keys.LABEL,), classes=CLASSES,
                       splits=keys.SPLITS, fingerprint=identity, input_shapes={keys.IMAGE: tuple(images.shape[1:])})
    return LoadedImages(info, images, labels, {split: indices[split] for split in keys.SPLITS}, config.seed)
