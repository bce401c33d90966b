"""The ``synthetic_videos`` dataset: clips of a textured shape moving over a static cluttered background, whose
class is the motion (see :mod:`.generate`): a stand-in for Kinetics-400 that needs temporal reasoning.

Items: ``video`` ``[3, T, H, W]`` float32 in [0, 1], ``label`` (index into ``info.classes``), ``index``. There is
no augmentation: a flip or a time reversal would change the class of most motions.

Clips are generated once per configuration into ``<cache_dir>/synthetic_videos/<fingerprint>/`` as
``<split>/<chunk>.npy`` (``uint8 [n, 3, T, H, W]``, at most 100 clips or 32 MiB per chunk), read through memory
maps and verified on every build by :func:`harness.datacache.ensure_cache` (a missing or damaged chunk is
generated again).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness import data as keys
from harness.data import DatasetInfo, check_split
from harness.datacache import check_index, fingerprint, plain_copy

from ..arrays import ArraySplit, ChunkReader, ensure_chunks
from .config import GENERATOR_VERSION, SyntheticVideosConfig
from .generate import generate_clips

NAME = "synthetic_videos"
CHUNK_CLIPS, CHUNK_BYTES = 100, 32 << 20  # clips per cached file: at most this many, and about this size


def split_sizes(config: SyntheticVideosConfig) -> dict[str, int]:
    per_class = {"train": config.train_per_class, "val": config.val_per_class, "test": config.test_per_class}
    return {split: n * len(config.classes) for split, n in per_class.items()}


def clip_shape(config: SyntheticVideosConfig) -> tuple[int, int, int, int]:
    return 3, config.clip_length, config.frame_size, config.frame_size


def chunk_size(config: SyntheticVideosConfig) -> int:
    return max(1, min(CHUNK_CLIPS, CHUNK_BYTES // int(np.prod(clip_shape(config)))))


def dataset_fingerprint(config: SyntheticVideosConfig) -> str:
    return fingerprint({"dataset": NAME, "generator_version": GENERATOR_VERSION, **config.generation_params()})


class SyntheticVideos:
    """A built (generated and verified) synthetic videos dataset."""

    def __init__(self, config: SyntheticVideosConfig, directory: Path) -> None:
        self.config, self.directory = config, directory
        self.sizes = split_sizes(config)
        self.info = DatasetInfo(name=NAME, modalities=(keys.VIDEO,), targets=(keys.LABEL,),
                                classes=tuple(config.classes), splits=tuple(self.sizes),
                                fingerprint=dataset_fingerprint(config), input_shapes={keys.VIDEO: clip_shape(config)})

    def split(self, name: str) -> ArraySplit:
        check_split(self.info, name)
        size = self.sizes[name]
        reader = ChunkReader(self.directory, name, size, chunk_size(self.config), clip_shape(self.config))
        return ArraySplit(NAME, name, keys.VIDEO, reader, np.arange(size) % len(self.config.classes), self.config.seed)

    def mesh_path(self, split: str, index: int) -> None:
        """Clips only: no mesh."""
        check_index(self.info, {s: range(n) for s, n in self.sizes.items()}, split, index)


def build(config: SyntheticVideosConfig, cache_dir: str | Path) -> SyntheticVideos:
    """Validate ``config``, generate or repair its cache under ``cache_dir``, and open it."""
    config = plain_copy(config, SyntheticVideosConfig).resolved()
    config.validate()
    identity = dataset_fingerprint(config)
    directory = Path(cache_dir) / NAME / identity
    header = {"dataset": NAME, "fingerprint": identity, "generator_version": GENERATOR_VERSION,
              "config": config.generation_params()}
    ensure_chunks(directory, header, split_sizes(config), chunk_size(config), generate_clips, config,
                  workers=config.workers, checksum_all=config.checksum_all, desc=f"generating {NAME}")
    return SyntheticVideos(config, directory)
