"""The ``synthetic_images`` dataset: procedural 32x32 colour images in 10 classes, the image counterpart of
CIFAR-10 for the compression benchmarks (see :mod:`.generate` and :mod:`.render`).

Items: ``image`` ``[3, H, W]`` float32 in [0, 1], ``label`` (index into ``info.classes``), ``index``. Training
items are augmented as CIFAR ResNets train (random crop of the image zero-padded by 4 pixels, horizontal
flip) unless ``augment=false``; val/test items are the stored images.

Images are generated once per configuration into ``<cache_dir>/synthetic_images/<fingerprint>/`` as
``<split>/<chunk>.npy`` (``uint8 [n, 3, H, W]``, 500 images per chunk) and verified on every build by
:func:`harness.datacache.ensure_cache` (a missing or damaged chunk is generated again).
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from harness import data as keys
from harness.data import DatasetInfo, check_split
from harness.datacache import check_index, fingerprint, plain_copy

from ..arrays import ArraySplit, ChunkReader, crop_flip, ensure_chunks
from .config import GENERATOR_VERSION, SyntheticImagesConfig
from .generate import generate_images

NAME = "synthetic_images"
CHUNK = 500  # images per cached file


def split_sizes(config: SyntheticImagesConfig) -> dict[str, int]:
    per_class = {"train": config.train_per_class, "val": config.val_per_class, "test": config.test_per_class}
    return {split: n * len(config.classes) for split, n in per_class.items()}


def dataset_fingerprint(config: SyntheticImagesConfig) -> str:
    return fingerprint({"dataset": NAME, "generator_version": GENERATOR_VERSION, **config.generation_params()})


class SyntheticImages:
    """A built (generated and verified) synthetic images dataset."""

    def __init__(self, config: SyntheticImagesConfig, directory: Path) -> None:
        self.config, self.directory = config, directory
        self.sizes = split_sizes(config)
        size = config.image_size
        self.info = DatasetInfo(name=NAME, modalities=(keys.IMAGE,), targets=(keys.LABEL,),
                                classes=tuple(config.classes), splits=tuple(self.sizes),
                                fingerprint=dataset_fingerprint(config), input_shapes={keys.IMAGE: (3, size, size)})

    def split(self, name: str) -> ArraySplit:
        check_split(self.info, name)
        size, classes = self.sizes[name], len(self.config.classes)
        reader = ChunkReader(self.directory, name, size, CHUNK, self.info.input_shapes[keys.IMAGE])
        augment = functools.partial(crop_flip, padding=self.config.augment_padding) if self.config.augment else None
        return ArraySplit(NAME, name, keys.IMAGE, reader, np.arange(size) % classes, self.config.seed, augment)

    def mesh_path(self, split: str, index: int) -> None:
        """Images only: no mesh."""
        check_index(self.info, {s: range(n) for s, n in self.sizes.items()}, split, index)


def build(config: SyntheticImagesConfig, cache_dir: str | Path) -> SyntheticImages:
    """Validate ``config``, generate or repair its cache under ``cache_dir``, and open it."""
    config = plain_copy(config, SyntheticImagesConfig)
    config.validate()
    identity = dataset_fingerprint(config)
    directory = Path(cache_dir) / NAME / identity
    header = {"dataset": NAME, "fingerprint": identity, "generator_version": GENERATOR_VERSION,
              "config": config.generation_params()}
    ensure_chunks(directory, header, split_sizes(config), CHUNK, generate_images, config, workers=config.workers,
                  checksum_all=config.checksum_all, desc=f"generating {NAME}")
    return SyntheticImages(config, directory)
