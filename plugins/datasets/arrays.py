"""What the array-backed classification datasets share (synthetic images, videos and voxels; MNIST, CIFAR-10):
the CIFAR training augmentation, per-class carving of splits, chunked ``.npy`` caches read through memory
maps, and the map-style split that turns stored ``uint8`` arrays into items.

torch is imported on first item only (through :class:`harness.datacache.SeededSplit`), so configs and specs
can import this module cheaply.
"""
from __future__ import annotations

import functools
import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from harness import data as keys
from harness.datacache import DataFileError, FileRecord, SeededSplit, ensure_cache, split_by_fractions, write_atomic

# ----- augmentation ----------------------------------------------------------------------------------------


def crop_flip(image: np.ndarray, rng: np.random.Generator, padding: int, flip: bool = True) -> np.ndarray:
    """The CIFAR ResNet training augmentation (He et al. 2016): zero-pad ``padding`` pixels on each side, take a
    random crop of the original size, and mirror it horizontally with probability 1/2. ``image`` is
    ``[C, H, W]``; the result has the same shape and dtype."""
    channels, height, width = image.shape
    if padding > 0:
        padded = np.zeros((channels, height + 2 * padding, width + 2 * padding), dtype=image.dtype)
        padded[:, padding:padding + height, padding:padding + width] = image
        top, left = rng.integers(0, 2 * padding + 1, size=2)
        image = padded[:, top:top + height, left:left + width]
    if flip and rng.random() < 0.5:
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)


# ----- splits ------------------------------------------------------------------------------------------------


def carve_by_class(labels: np.ndarray, fractions: Mapping[str, float], seed: int,
                   namespace: str = "") -> dict[str, np.ndarray]:
    """Indices of ``labels`` split by ``fractions`` within each class (so every split keeps the class
    balance), chosen by a seeded hash of each index (:func:`harness.datacache.split_by_fractions`); each split's
    indices are sorted. ``namespace`` separates the ids of different source files."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in fractions}
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        ids = {f"{namespace}{index:09d}": index for index in members.tolist()}
        for name, chosen in split_by_fractions(list(ids), fractions, seed).items():
            parts[name].append(np.asarray([ids[i] for i in chosen], dtype=np.int64))
    return {name: np.sort(np.concatenate(chunks)) if chunks else np.zeros(0, np.int64)
            for name, chunks in parts.items()}


def first_per_class(indices: np.ndarray, labels: np.ndarray, limit: int) -> np.ndarray:
    """The first ``limit`` of ``indices`` of each class (all of them for ``limit`` 0), in their order."""
    if limit <= 0:
        return indices
    keep = np.zeros(len(indices), dtype=bool)
    for label in np.unique(labels[indices]):
        keep[np.flatnonzero(labels[indices] == label)[:limit]] = True
    return indices[keep]


def check_classes(dataset: str, classes: Sequence[str], available: Sequence[str]) -> list[str]:
    """``classes`` as a plain list after checking they are known, unique and not empty."""
    classes = list(classes)
    unknown = [c for c in classes if c not in available]
    if unknown:
        raise ValueError(f"{dataset}: unknown classes {unknown}; available: {list(available)}")
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"{dataset}: classes must be non-empty and unique, got {classes}; "
                         f"available: {list(available)}")
    return classes


# ----- chunked caches ----------------------------------------------------------------------------------------


def npy_bytes(array: np.ndarray) -> bytes:
    """The ``.npy`` bytes of ``array`` (deterministic: no timestamps), readable through a memory map."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def chunk_file(split: str, chunk: int) -> str:
    """A cached chunk's path relative to its cache directory."""
    return f"{split}/{chunk:05d}.npy"


def chunk_jobs(sizes: Mapping[str, int], chunk_size: int) -> list[tuple[str, int]]:
    """``(split, chunk)`` for every chunk of every split."""
    return [(split, chunk) for split, size in sizes.items() for chunk in range(-(-size // chunk_size))]


def chunk_range(size: int, chunk_size: int, chunk: int) -> tuple[int, int]:
    """The item indices ``[start, stop)`` of chunk ``chunk`` of a split of ``size`` items."""
    start = chunk * chunk_size
    return start, min(size, start + chunk_size)


def write_chunk(generate: Callable[[Any, str, range], np.ndarray], config: Any, directory: Path,
                sizes: Mapping[str, int], chunk_size: int, split: str, chunk: int) -> dict[str, FileRecord]:
    """Worker job: ``generate(config, split, indices)`` for one chunk's items, written as one ``.npy``."""
    start, stop = chunk_range(sizes[split], chunk_size, chunk)
    name = chunk_file(split, chunk)
    return {name: write_atomic(directory / name, npy_bytes(generate(config, split, range(start, stop))))}


def ensure_chunks(directory: Path, header: Mapping[str, Any], sizes: Mapping[str, int], chunk_size: int,
                  generate: Callable[[Any, str, range], np.ndarray], config: Any, *, workers: int,
                  checksum_all: bool, desc: str) -> None:
    """Verify (and generate or repair) a chunked cache with :func:`harness.datacache.ensure_cache`: every chunk
    whose file is missing or does not match the manifest is generated again. ``generate`` must be a
    module-level function and ``config`` picklable (generation runs in spawned worker processes)."""
    ensure_cache(directory, {**header, "chunk_size": chunk_size, "sizes": dict(sizes)}, chunk_jobs(sizes, chunk_size),
                 lambda job: [chunk_file(*job)],
                 functools.partial(write_chunk, generate, config, directory, dict(sizes), chunk_size),
                 workers=workers, checksum_all=checksum_all, desc=desc)


class ChunkReader:
    """Items of one split stored as ``chunk_size`` items per ``.npy`` file, read through memory maps (opened on
    first use, so a split object pickles small; DataLoader workers share the mapped pages)."""

    def __init__(self, directory: Path, split: str, size: int, chunk_size: int, item_shape: tuple[int, ...]) -> None:
        self.directory, self.split, self.size, self.chunk_size = directory, split, size, chunk_size
        self.item_shape = tuple(item_shape)
        self._maps: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.size

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}

    def __getitem__(self, index: int) -> np.ndarray:
        chunk, offset = divmod(index, self.chunk_size)
        if chunk not in self._maps:
            path = self.directory / chunk_file(self.split, chunk)
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataFileError(path, f"unreadable cached chunk ({type(exc).__name__}: {exc})") from exc
            start, stop = chunk_range(self.size, self.chunk_size, chunk)
            if array.shape != (stop - start, *self.item_shape):
                raise DataFileError(path, f"cached chunk has shape {array.shape}, expected "
                                          f"{(stop - start, *self.item_shape)}")
            self._maps[chunk] = array
        return np.asarray(self._maps[chunk][offset])


# ----- items -------------------------------------------------------------------------------------------------


class ArraySplit(SeededSplit):
    """A classification split over stored arrays: item ``i`` is ``{key: array(i) / divisor (float32; uint8
    pixels / 255 lie in [0, 1]), "label": labels[i], "index": i}``, with ``augment(array, rng)`` applied to training items
    (``rng`` fresh per draw, see :class:`~harness.datacache.SeededSplit`).

    ``arrays`` is anything indexable by item (a numpy array or a :class:`ChunkReader`)."""

    def __init__(self, name: str, split: str, key: str, arrays: Sequence[np.ndarray] | np.ndarray, labels: np.ndarray,
                 seed: int, augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
                 divisor: float | None = 255) -> None:
        super().__init__(name, split, len(labels), seed)
        if len(arrays) != len(labels):
            raise ValueError(f"{name} {split}: {len(arrays)} arrays but {len(labels)} labels")
        self.key, self.arrays, self.labels, self.divisor = key, arrays, np.asarray(labels, np.int64), divisor
        self.augment = augment if split == "train" else None

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        array = np.asarray(self.arrays[index])
        if self.augment is not None:
            array = self.augment(array, rng)
        value = array.astype(np.float32)
        if self.divisor is not None:
            value /= np.float32(self.divisor)
        return {self.key: value, keys.LABEL: np.int64(self.labels[index])}


class Picked:
    """``arrays[indices[i]]`` for item ``i``: a split's view of arrays shared by all splits (no copy)."""

    def __init__(self, arrays: np.ndarray, indices: np.ndarray) -> None:
        self.arrays, self.indices = arrays, np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.arrays[self.indices[index]]


class LoadedImages:
    """A built real image dataset held in memory: ``uint8 [N, C, H, W]`` images and their labels, and each
    split's indices into them (MNIST and CIFAR-10)."""

    def __init__(self, info: keys.DatasetInfo, images: np.ndarray, labels: np.ndarray,
                 indices: Mapping[str, np.ndarray], seed: int,
                 augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None) -> None:
        self.info, self.images, self.labels, self.seed, self.augment = info, images, labels, seed, augment
        self.indices = {split: np.asarray(indices[split], dtype=np.int64) for split in info.splits}

    def split(self, name: str) -> ArraySplit:
        keys.check_split(self.info, name)
        chosen = self.indices[name]
        return ArraySplit(self.info.name, name, keys.IMAGE, Picked(self.images, chosen), self.labels[chosen],
                          self.seed, self.augment)

    def mesh_path(self, split: str, index: int) -> None:
        """Images only: no mesh."""
        from harness.datacache import check_index

        check_index(self.info, self.indices, split, index)
