"""The ``cifar10`` dataset: the binary version of CIFAR-10 (``data_batch_1.bin`` ... ``data_batch_5.bin``,
``test_batch.bin``, optional ``batches.meta.txt`` with the class names one per line).

Each file is a sequence of 3073-byte records: 1 label byte (0..9), then 3072 pixel bytes, the 1024 red values,
the 1024 green and the 1024 blue, each plane row-major 32x32. A file whose length is not a whole number of
records, or a label outside 0..9, raises a :class:`~harness.datacache.DataFileError` naming the file and the
record. ``test`` is ``test_batch.bin``; ``train`` and ``val`` are carved per class from the five training
batches (``val_fraction``). Items: ``image`` ``[3, 32, 32]`` float32 in [0, 1], ``label``, ``index``; training
items are augmented as CIFAR ResNets train (random crop with 4 pixels of zero padding, horizontal flip) unless
``augment=false`` (the same code as synthetic_images').
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from harness import data as keys
from harness.data import DatasetInfo
from harness.datacache import DataFileError, file_stats, fingerprint, numbered_lines, plain_copy, require_root

from ..arrays import LoadedImages, carve_by_class, crop_flip, first_per_class
from .config import LAYOUT, LOADER_VERSION, Cifar10Config

NAME = "cifar10"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SIDE = 32
RECORD = 1 + 3 * SIDE * SIDE
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE, META_FILE = "test_batch.bin", "batches.meta.txt"


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``uint8 [N, 3, 32, 32]`` images and ``int64 [N]`` labels of one binary batch file."""
    data = np.fromfile(path, dtype=np.uint8)
    if len(data) == 0:
        raise DataFileError(path, f"empty file (expected records of {RECORD} bytes: 1 label byte + 3072 pixel bytes)")
    if len(data) % RECORD:
        raise DataFileError(path, f"{len(data)} bytes is not a whole number of {RECORD}-byte records (1 label byte + "
                                  f"3072 pixel bytes): record {len(data) // RECORD} (0-based) is truncated to "
                                  f"{len(data) % RECORD} bytes")
    records = data.reshape(-1, RECORD)
    labels = records[:, 0].astype(np.int64)
    bad = np.flatnonzero(labels > 9)
    if len(bad):
        raise DataFileError(path, f"record {bad[0]} (0-based, byte offset {bad[0] * RECORD}): label {labels[bad[0]]} "
                                  f"is not in 0..9")
    return records[:, 1:].reshape(-1, 3, SIDE, SIDE), labels


def read_classes(path: Path) -> tuple[str, ...]:
    names = tuple(text.strip() for _, text in numbered_lines(path))
    if len(names) != len(CLASSES):
        raise DataFileError(path, f"{len(names)} class names, expected {len(CLASSES)} (one per line)")
    return names


def build(config: Cifar10Config, cache_dir: str | Path) -> LoadedImages:
    """Validate ``config``, read and check the binary batches under ``config.root``, and carve the splits."""
    del cache_dir  # nothing is derived: the files are read directly
    config = plain_copy(config, Cifar10Config)
    config.validate()
    root = require_root(NAME, config.root, LAYOUT)
    if (root / "cifar-10-batches-bin").is_dir() and not (root / TEST_FILE).is_file():
        root = root / "cifar-10-batches-bin"
    missing = [name for name in (*TRAIN_FILES, TEST_FILE) if not (root / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{NAME}: {root} lacks {missing} (expected layout: {LAYOUT})")
    batches = [read_batch(root / name) for name in (*TRAIN_FILES, TEST_FILE)]
    images = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    n_train = sum(len(b[1]) for b in batches[:-1])
    parts = carve_by_class(labels[:n_train], {"train": 1 - config.val_fraction, "val": config.val_fraction},
                           config.seed)
    indices = {**parts, "test": np.arange(n_train, len(labels))}
    indices = {split: first_per_class(indices[split], labels, config.max_per_class) for split in keys.SPLITS}
    meta = root / META_FILE
    classes = read_classes(meta) if meta.is_file() else CLASSES
    used = [root / name for name in (*TRAIN_FILES, TEST_FILE)] + ([meta] if meta.is_file() else [])
    identity = fingerprint({"dataset": NAME, "loader_version": LOADER_VERSION, "config": config.params(),
                            "files": file_stats(root, used)})
    info = DatasetInfo(name=NAME, modalities=(keys.IMAGE,), targets=(keys.LABEL,), classes=classes,
                       splits=keys.SPLITS, fingerprint=identity, input_shapes={keys.IMAGE: (3, SIDE, SIDE)})
    augment = functools.partial(crop_flip, padding=config.augment_padding) if config.augment else None
    return LoadedImages(info, images, labels, indices, config.seed, augment)
