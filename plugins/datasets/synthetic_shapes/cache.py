"""The on-disk cache: ``<cache_root>/synthetic_shapes/<fingerprint>/``.

Layout: ``<split>/<index>.npz`` (all arrays of one shape) and ``<split>/<index>.ply`` (its mesh, for
``mesh_path``), plus ``manifest.json`` with the fingerprint, the generation parameters and, per file,
its sha256, size and mtime. Files are written to a temporary name and renamed, so a killed generation
leaves no half file; the manifest is rewritten every few seconds during generation, so a restart only
redoes the shapes it does not vouch for. Opening re-hashes only files whose size or mtime changed
(everything with ``checksum_all``); a missing or mismatching file has its shape regenerated.
"""
from __future__ import annotations

import copy
import fcntl
import hashlib
import io
import json
import multiprocessing
import os
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from harness.progress import progress

from .config import GENERATOR_VERSION, SyntheticShapesConfig

NAME = "synthetic_shapes"
MANIFEST = "manifest.json"
MANIFEST_EVERY_S = 5.0

FileRecord = dict[str, Any]  # {"sha256": str, "size": int, "mtime_ns": int}


def fingerprint(config: SyntheticShapesConfig) -> str:
    payload = json.dumps({"generator_version": GENERATOR_VERSION, **config.generation_params()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def cache_directory(config: SyntheticShapesConfig, cache_root: str | Path) -> Path:
    return Path(cache_root) / NAME / fingerprint(config)


def split_sizes(config: SyntheticShapesConfig) -> dict[str, int]:
    per_class = {"train": config.train_per_class, "val": config.val_per_class, "test": config.test_per_class}
    return {split: n * len(config.categories) for split, n in per_class.items()}


def shape_files(split: str, index: int) -> tuple[str, str]:
    """The npz and ply paths of one shape, relative to the cache directory."""
    stem = f"{split}/{index:06d}"
    return f"{stem}.npz", f"{stem}.ply"


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed .npz (readable by ``np.load``) whose bytes depend on the arrays only: ``np.savez``
    stamps the current time into the zip, which would make identical shapes hash differently."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def ply_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    import trimesh

    return trimesh.exchange.ply.export_ply(trimesh.Trimesh(vertices, faces, process=False), encoding="binary")


def write_atomic(path: Path, data: bytes) -> FileRecord:
    """Write via a temporary file and rename (no fsync: a file torn by power loss fails its checksum)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "mtime_ns": path.stat().st_mtime_ns}


def _generate_files(config: SyntheticShapesConfig, directory: Path, split: str, index: int) -> dict[str, FileRecord]:
    """Worker job: generate one shape and write its files."""
    from .generate import generate_shape  # heavy (manifold3d, igl): only generating processes import it

    arrays = generate_shape(config, split, index)
    npz, ply = shape_files(split, index)
    return {npz: write_atomic(directory / npz, npz_bytes(arrays)),
            ply: write_atomic(directory / ply, ply_bytes(arrays["vertices"], arrays["faces"]))}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _intact(path: Path, record: FileRecord | None, full: bool) -> bool:
    """Whether ``path`` still holds what ``record`` describes; refreshes the record's mtime after a re-hash."""
    if record is None:
        return False
    try:
        stat = path.stat()
    except FileNotFoundError:
        return False
    if stat.st_size != record["size"]:
        return False
    if not full and stat.st_mtime_ns == record["mtime_ns"]:
        return True
    if _sha256(path) != record["sha256"]:
        return False
    record["mtime_ns"] = stat.st_mtime_ns
    return True


def _read_manifest(directory: Path, config: SyntheticShapesConfig) -> dict[str, FileRecord]:
    """The file records of a manifest that matches this configuration ({} if none does)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if (not isinstance(manifest, dict) or manifest.get("fingerprint") != fingerprint(config)
            or manifest.get("config") != config.generation_params() or not isinstance(manifest.get("files"), dict)):
        return {}
    return manifest["files"]


def _write_manifest(directory: Path, config: SyntheticShapesConfig, files: dict[str, FileRecord]) -> None:
    manifest = {"dataset": NAME, "fingerprint": fingerprint(config), "generator_version": GENERATOR_VERSION,
                "config": config.generation_params(), "files": dict(sorted(files.items()))}
    write_atomic(directory / MANIFEST, json.dumps(manifest, indent=1).encode())


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise concurrent builds of one cache (a second process waits, then finds the files intact)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_cache(config: SyntheticShapesConfig, cache_root: str | Path) -> Path:
    """Verify the cache of ``config`` and (re)generate every shape whose files are missing or damaged."""
    directory = cache_directory(config, cache_root)
    with _locked(directory):
        for leftover in directory.rglob(".*.tmp"):  # from a killed generation
            leftover.unlink()
        files = _read_manifest(directory, config)
        known = copy.deepcopy(files)
        jobs = [(split, index) for split, size in split_sizes(config).items() for index in range(size)
                if not all(_intact(directory / name, files.get(name), config.checksum_all)
                           for name in shape_files(split, index))]
        try:
            if jobs:
                _generate(config, directory, jobs, files)
        finally:  # also after an interruption: vouch for the shapes that were finished
            if files != known:  # regenerated files, or re-hashed ones with a new mtime
                _write_manifest(directory, config, files)
    return directory


def _generate(config: SyntheticShapesConfig, directory: Path, jobs: list[tuple[str, int]],
              files: dict[str, FileRecord]) -> None:
    """Run the jobs (in parallel unless one worker suffices), checkpointing the manifest as they finish."""
    workers = max(1, min(config.workers, os.cpu_count() or 1, len(jobs)))
    desc = f"generating {NAME} ({len(jobs)} shapes)"
    last_save = time.monotonic()

    def record(result: dict[str, FileRecord]) -> None:
        nonlocal last_save
        files.update(result)
        if time.monotonic() - last_save > MANIFEST_EVERY_S:
            _write_manifest(directory, config, files)
            last_save = time.monotonic()

    if workers == 1:
        for split, index in progress(jobs, desc=desc):
            record(_generate_files(config, directory, split, index))
        return
    # spawn, not fork: the parent may hold torch/OpenMP threads, which a forked child can deadlock on
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(_generate_files, config, directory, split, index) for split, index in jobs]
        for future in progress(as_completed(futures), desc=desc, total=len(futures)):
            record(future.result())
    finally:  # on an error or Ctrl-C, drop the queued shapes instead of waiting for them
        pool.shutdown(cancel_futures=True)
