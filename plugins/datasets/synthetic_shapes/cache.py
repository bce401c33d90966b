"""The on-disk cache: ``<cache_root>/synthetic_shapes/<fingerprint>/``, verified and repaired by
:func:`harness.datacache.ensure_cache`.

Layout: ``<split>/<index>.npz`` (all arrays of one shape) and ``<split>/<index>.ply`` (its mesh, for
``mesh_path``), plus ``manifest.json`` with the fingerprint, the generation parameters and, per file, its
sha256, size and mtime. Files are written atomically; a missing or mismatching file has its shape
regenerated, and a killed generation resumes where it stopped; a file that fails to read (damage under an
unchanged size and mtime) has its shape regenerated when an item reads it.
"""
from __future__ import annotations

import functools
from pathlib import Path

from harness import datacache
from harness.datacache import MANIFEST, FileRecord, VerifiedCache, npz_bytes, ply_bytes, shape_files, write_atomic
from harness.datacache import sha256_file as _sha256

from .config import GENERATOR_VERSION, SyntheticShapesConfig

NAME = "synthetic_shapes"
__all__ = ["MANIFEST", "NAME", "_sha256", "cache_directory", "ensure_cache", "fingerprint", "shape_files",
           "split_sizes"]


def fingerprint(config: SyntheticShapesConfig) -> str:
    return datacache.fingerprint({"generator_version": GENERATOR_VERSION, **config.generation_params()})


def cache_directory(config: SyntheticShapesConfig, cache_root: str | Path) -> Path:
    return Path(cache_root) / NAME / fingerprint(config)


def split_sizes(config: SyntheticShapesConfig) -> dict[str, int]:
    per_class = {"train": config.train_per_class, "val": config.val_per_class, "test": config.test_per_class}
    return {split: n * len(config.categories) for split, n in per_class.items()}


def _generate_files(config: SyntheticShapesConfig, directory: Path, split: str, index: int) -> dict[str, FileRecord]:
    """Worker job: generate one shape and write its files."""
    from .generate import generate_shape  # heavy (manifold3d, igl): only generating processes import it

    arrays = generate_shape(config, split, index)
    npz, ply = shape_files(split, index)
    return {npz: write_atomic(directory / npz, npz_bytes(arrays)),
            ply: write_atomic(directory / ply, ply_bytes(arrays["vertices"], arrays["faces"]))}


def ensure_cache(config: SyntheticShapesConfig, cache_root: str | Path) -> VerifiedCache:
    """Verify the cache of ``config`` and (re)generate every shape whose files are missing or damaged."""
    directory = cache_directory(config, cache_root)
    header = {"dataset": NAME, "fingerprint": fingerprint(config), "generator_version": GENERATOR_VERSION,
              "config": config.generation_params()}
    jobs = [(split, index) for split, size in split_sizes(config).items() for index in range(size)]
    return datacache.ensure_cache(directory, header, jobs, lambda job: shape_files(*job),
                                  functools.partial(_generate_files, config, directory), workers=config.workers,
                                  checksum_all=config.checksum_all, desc=f"generating {NAME}")
