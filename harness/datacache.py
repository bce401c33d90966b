"""Shared machinery of file-backed datasets (the synthetic shapes and the real-format loaders): source
checks and fingerprints, split fallbacks, mesh cleaning, strict parsing with file-and-line errors, verified
caches of derived samples, and drawing Occupancy Networks items from stored per-shape samples.

Cache layout (one folder per dataset identity): ``manifest.json`` holds a header (what the files were made
from; a cache whose header differs is not trusted) and, per file, its sha256, size and mtime. Files are
written to a temporary name and renamed, so a killed generation leaves no half file; the manifest is
rewritten every few seconds during generation, so a restart only redoes the jobs it does not vouch for.
Opening re-hashes only files whose size or mtime changed (every file with ``checksum_all``); a job with a
missing or mismatching file is redone. Damage that keeps a file's size and mtime is found when the file is
read: readers go through :func:`read_verified`, which redoes that file's job (:class:`VerifiedCache`).
"""
from __future__ import annotations

import copy
import dataclasses
import fcntl
import functools
import hashlib
import io
import json
import logging
import multiprocessing
import os
import time
import zipfile
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from harness import data as keys
from harness.progress import progress

if TYPE_CHECKING:
    import torch

MANIFEST = "manifest.json"
MANIFEST_EVERY_S = 5.0
# Bytes of stored arrays kept in memory by read_arrays (per process): a quick-profile dataset fits whole, so
# every epoch after the first reads no file; a paper-sized one keeps its most recently used files.
ARRAY_MEMO_BYTES = 512 * 2**20

FileRecord = dict[str, Any]  # {"sha256": str, "size": int, "mtime_ns": int}
T = TypeVar("T")

log = logging.getLogger(__name__)


# ----- errors and sources ----------------------------------------------------------------------------------


class DataFileError(ValueError):
    """A malformed dataset file; the message names the file (and line) so the user can fix or remove it."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.problem, self.line = Path(path), problem, line

    def __reduce__(self) -> tuple[type, tuple[Path, str, int | None]]:
        """Picklable with its fields, so an error raised in a worker process reaches the parent intact."""
        return type(self), (self.path, self.problem, self.line)


def require_root(dataset: str, root: str, layout: str) -> Path:
    """The configured data folder: real datasets cannot guess where the user keeps their files."""
    if not root:
        raise FileNotFoundError(f"{dataset}: no data folder given; set dataset.root=/path/to/data (expected "
                                f"layout: {layout})")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{dataset}: dataset.root={root!r} is not a folder ({path.resolve()}); "
                                f"expected layout: {layout}")
    return path


def fingerprint(payload: Any) -> str:
    """Short hash of a JSON-serialisable description (loader version, config fields, file manifest)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def file_stats(root: Path, paths: Iterable[Path]) -> list[list[Any]]:
    """``[relative path, size, mtime_ns]`` per file: cheap enough for every build of a large dataset, and an
    edit, replacement or re-download changes it, so a changed dataset gets a different fingerprint."""
    rows = []
    for path in paths:
        stat = path.stat()
        rows.append([path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    return sorted(rows)


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder counts; every split with a positive fraction gets a member while another can spare
    one, so small samples of a dataset still have a validation and a test shape."""
    total = sum(fractions.values())
    raw = {name: n * share / total for name, share in fractions.items()}
    counts = {name: int(value) for name, value in raw.items()}
    for name in sorted(raw, key=lambda k: counts[k] - raw[k])[:n - sum(counts.values())]:
        counts[name] += 1
    for name, share in fractions.items():
        donor = max(counts, key=lambda k: counts[k])
        if share > 0 and counts[name] == 0 and counts[donor] > 1:
            counts[donor] -= 1
            counts[name] += 1
    return counts


def split_by_fractions(ids: Sequence[str], fractions: Mapping[str, float], seed: int) -> dict[str, list[str]]:
    """A deterministic split of ``ids`` (for a dataset without official lists): ordered by a seeded hash of
    each id, not by listing order, then cut by :func:`split_counts`. Each part keeps the ids sorted."""
    order = sorted(ids, key=lambda i: hashlib.sha256(f"{seed}/{i}".encode()).hexdigest())
    parts, start = {}, 0
    for name, count in split_counts(len(order), fractions).items():
        parts[name] = sorted(order[start:start + count])
        start += count
    return parts


SHOWN_OVERLAPS = 5  # items named in the message about items listed in several splits


def check_disjoint_splits(dataset: str, splits: Mapping[str, Iterable[str]], strict: bool, lists: str) -> None:
    """Warn (``strict``: raise a ValueError with the same text) when an item id is in more than one split of
    ``splits`` (split -> item ids, as read from ``lists``, which the message names): an item trained on and
    tested on inflates every score, and only the user can say which split it belongs to."""
    owners: dict[str, list[str]] = {}
    for split, ids in splits.items():
        for item in dict.fromkeys(ids):  # an id repeated within one split is not in two splits
            owners.setdefault(item, []).append(split)
    shared = {item: found for item, found in owners.items() if len(found) > 1}
    if not shared:
        return
    pairs = Counter(" & ".join(found) for found in shared.values())
    examples = ", ".join(f"{item} ({' & '.join(found)})" for item, found in list(shared.items())[:SHOWN_OVERLAPS])
    message = (f"{dataset}: items listed in more than one split of {lists}: {len(shared)} "
               f"({', '.join(f'{count} in {pair}' for pair, count in pairs.items())}), e.g. {examples}; "
               f"dataset.strict_splits=true refuses such lists")
    if strict:
        raise ValueError(message)
    log.warning(message)


def check_index(info: keys.DatasetInfo, splits: Mapping[str, Sized], split: str, index: int) -> None:
    """A clear error for an unknown split or an index outside it (``splits``: each split's shapes)."""
    keys.check_split(info, split)
    if not 0 <= index < len(splits[split]):
        raise IndexError(f"{info.name} {split} has {len(splits[split])} shapes, asked for {index}")


def unit_sphere(points: np.ndarray, path: Path) -> np.ndarray:
    """Centred on the centroid and scaled so the farthest point is at distance 1 (PointNet++'s pc_normalize)."""
    centred = points - points.mean(axis=0)
    radius = np.linalg.norm(centred, axis=1).max()
    if not radius > 0:
        raise DataFileError(path, "all points coincide")
    return centred / radius


def clean_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge coincident vertices, drop faces repeated with either winding and wind each connected piece
    consistently outwards. Raw ModelNet and ShapeNet models are often double-sided (every face also stored
    reversed), which cancels the winding number to 0 everywhere, and their pieces disagree in winding; both
    would make winding-number occupancy meaningless."""
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces, process=True)
    mesh.update_faces(mesh.unique_faces())
    mesh.remove_unreferenced_vertices()
    trimesh.repair.fix_normals(mesh, multibody=True)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


# ShapeNetCore.v2 axes -> v1's (in which ONet's and ShapeNetPart's clouds lie): (x, y, z) -> (-z, y, x),
# a quarter turn about y
V2_TO_ONET = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
# the largest median distance of a point cloud from its fitted mesh (the shared samples: under 0.005;
# ONet's clouds come from watertight remeshes, slightly off the raw surface)
FRAME_TOLERANCE = 0.02
FRAME_SAMPLES = 2000  # point cloud points the fit is checked on


@dataclasses.dataclass(frozen=True)
class Frame:
    """ShapeNetCore.v2 model frame -> a v1 point cloud's: turn into v1's axes, then scale and shift."""

    scale: float
    offset: np.ndarray

    def forward(self, points: np.ndarray) -> np.ndarray:
        return points @ V2_TO_ONET.T * self.scale + self.offset

    def inverse(self, points: np.ndarray) -> np.ndarray:
        return ((points - self.offset) / self.scale) @ V2_TO_ONET


def fit_frame(vertices: np.ndarray, cloud: np.ndarray) -> Frame:
    """The frame that maps the turned mesh's bounding box onto the point cloud's (centres and longest sides)."""
    turned = vertices @ V2_TO_ONET.T
    low, high, cloud_low, cloud_high = turned.min(0), turned.max(0), cloud.min(0), cloud.max(0)
    scale = float((cloud_high - cloud_low).max() / (high - low).max())
    return Frame(scale, (cloud_low + cloud_high) / 2 - (low + high) / 2 * scale)


def fit_checked(obj: Path, vertices: np.ndarray, faces: np.ndarray, cloud_path: Path,
                cloud: np.ndarray) -> tuple[Frame, np.ndarray, float]:
    """:func:`fit_frame`, the fitted vertices and the median distance of the cloud from the fitted mesh; a
    distance over ``FRAME_TOLERANCE`` means the mesh is not the cloud's shape (or not in v2's axes)."""
    import igl

    frame = fit_frame(vertices, cloud)
    fitted = frame.forward(vertices)
    probe = cloud[::max(1, len(cloud) // FRAME_SAMPLES)]
    residual = float(np.median(np.sqrt(igl.point_mesh_squared_distance(probe, fitted, faces)[0])))
    if residual > FRAME_TOLERANCE:
        raise DataFileError(obj, f"does not match {cloud_path} after the ShapeNetCore.v2 -> v1 frame fit (median "
                                 f"distance {residual:.4f} > {FRAME_TOLERANCE}); is dataset.mesh_root ShapeNetCore.v2?")
    return frame, fitted, residual


def write_fitted_shape(directory: Path, npz: str, ply: str, arrays: dict[str, np.ndarray], frame: Frame,
                       residual: float, fitted: np.ndarray, faces: np.ndarray) -> dict[str, FileRecord]:
    """Cache a mesh-derived shape: its samples with the frame fit that placed the mesh (target frame =
    (v2 @ V2_TO_ONET.T) * frame_scale + frame_offset), and the fitted mesh."""
    arrays = {**arrays, "frame_scale": np.float64(frame.scale), "frame_offset": frame.offset,
              "frame_residual": np.float64(residual)}
    return {npz: write_atomic(directory / npz, npz_bytes(arrays)),
            ply: write_atomic(directory / ply, ply_bytes(fitted.astype(np.float32), faces))}


def read_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and triangles of a mesh file (all its parts concatenated); no faces is an error."""
    import trimesh

    try:
        mesh = trimesh.load(path, force="mesh", process=False, skip_materials=True)
    except Exception as exc:  # trimesh raises many kinds; each one is a file the user must fix
        raise DataFileError(path, f"unreadable mesh ({type(exc).__name__}: {exc}){unread_elements(path)}") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise DataFileError(path, f"empty mesh: no faces{unread_elements(path)}")
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)


def unread_elements(path: Path) -> str:
    """A note naming the elements of a PLY header other than ``vertex`` and ``face`` ("" for none, or any other
    file): where trimesh finds no faces, or fails, they may be the faces in a form it does not read, such as
    ``tristrips``."""
    try:
        with open(path, "rb") as stream:
            head = stream.read(1 << 16)
    except OSError:  # e.g. missing: the error it is a note to says so
        return ""
    if not head.startswith(b"ply"):
        return ""
    lines = head.split(b"end_header")[0].decode("ascii", errors="replace").splitlines()
    others = [words[1] for words in map(str.split, lines)
              if len(words) > 1 and words[0] == "element" and words[1] not in ("vertex", "face")]
    return f" (PLY elements not read: {', '.join(others)}; faces come from a 'face' element only)" if others else ""


# ----- strict parsing ----------------------------------------------------------------------------------------


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    """The non-blank lines of a text file with their 1-based line numbers."""
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise DataFileError(path, f"not a text file ({exc})") from exc
    return [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def parse_rows(rows: Sequence[tuple[int, str]], path: Path, columns: int, delimiter: str | None = None,
               dtype: type = np.float64) -> np.ndarray:
    """``[len(rows), columns]`` array of numbered text rows; the first bad row raises a
    :class:`DataFileError` naming its line. numpy parses the common, well-formed case; the slow scan that
    finds the culprit only runs after it fails."""
    try:
        array = np.loadtxt([text for _, text in rows], delimiter=delimiter, dtype=dtype, ndmin=2, comments=None)
    except ValueError:
        array = None
    if array is not None and array.shape == (len(rows), columns) and np.isfinite(array).all():
        return array
    for number, text in rows:
        fields = text.split(delimiter)
        if len(fields) != columns:
            raise DataFileError(path, f"expected {columns} values, found {len(fields)}: {text.strip()!r}", number)
        for field in fields:
            try:
                value = dtype(field)
            except ValueError:
                raise DataFileError(path, f"not a number: {field.strip()!r}", number) from None
            if not np.isfinite(value):
                raise DataFileError(path, f"not a finite number: {field.strip()!r}", number)
    raise DataFileError(path, f"unreadable table of {columns} columns")  # numpy failed where the scan did not


def read_table(path: Path, columns: int, delimiter: str | None = None) -> np.ndarray:
    """A whole text file of ``columns`` numbers per line (blank lines ignored), as float64."""
    rows = numbered_lines(path)
    if not rows:
        raise DataFileError(path, "empty file")
    return parse_rows(rows, path, columns, delimiter)


def load_npz(path: Path, names: Sequence[str], *, require_all: bool = True) -> dict[str, np.ndarray]:
    """The named arrays of an .npz file (those of them it has, with ``require_all=False``); a corrupt or
    incomplete file raises a :class:`DataFileError` naming it."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [name for name in names if name not in npz.files]
            if missing and require_all:
                raise DataFileError(path, f"missing arrays {missing} (it has {sorted(npz.files)})")
            return {name: npz[name] for name in names if name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, DataFileError):
            raise
        raise DataFileError(path, f"unreadable .npz ({type(exc).__name__}: {exc})") from exc


def check_fields(dataset: str, config: Any, *, counts: Sequence[str] = (), fractions: Sequence[str] = (),
                 non_negative: Sequence[str] = ()) -> None:
    """Raise a ValueError naming the first field that is not an integer >= 1, a number in (0, 1) or a
    number >= 0 respectively (bools are not numbers here, although Python says so)."""
    checks = [(name, isinstance(v, int) and v >= 1, "an integer >= 1") for name in counts
              for v in [getattr(config, name)]]
    checks += [(name, isinstance(v, (int, float)) and 0 < v < 1, "a number in (0, 1)") for name in fractions
               for v in [getattr(config, name)]]
    checks += [(name, isinstance(v, (int, float)) and v >= 0, "a number >= 0") for name in non_negative
               for v in [getattr(config, name)]]
    for name, ok, expected in checks:
        if not ok or isinstance(getattr(config, name), bool):
            raise ValueError(f"{dataset}: {name} must be {expected}, got {getattr(config, name)!r}")


def check_split_fractions(dataset: str, fractions: Mapping[str, Any]) -> None:
    """A ValueError unless ``fractions`` gives each of train, val and test a number > 0."""
    if set(fractions) != set(keys.SPLITS) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in fractions.values()):
        raise ValueError(f"{dataset}: split_fractions must give train, val and test a number > 0, "
                         f"got {dict(fractions)}")


def plain_copy(config: Any, cls: type) -> Any:
    """An instance of ``cls`` with ``config``'s field values: the harness hands over a generated subclass
    (with ``name``) that worker processes cannot unpickle, and list- and dict-like values become plain."""
    def plain(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, Sequence) and not isinstance(value, str):
            return [plain(v) for v in value]
        return value

    return cls(**{f.name: plain(getattr(config, f.name)) for f in dataclasses.fields(cls)})


# ----- verified cache ----------------------------------------------------------------------------------------


def shape_files(split: str, index: int) -> tuple[str, str]:
    """The npz (samples) and ply (mesh) paths of one cached shape, relative to its cache directory."""
    stem = f"{split}/{index:06d}"
    return f"{stem}.npz", f"{stem}.ply"


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
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


def sha256_file(path: Path) -> str:
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
    if sha256_file(path) != record["sha256"]:
        return False
    record["mtime_ns"] = stat.st_mtime_ns
    return True


def _read_manifest(directory: Path, header: Mapping[str, Any]) -> dict[str, FileRecord]:
    """The file records of a manifest written with this header ({} if there is none)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if (not isinstance(manifest, dict) or any(manifest.get(k) != v for k, v in header.items())
            or not isinstance(manifest.get("files"), dict)):
        return {}
    return manifest["files"]


def _write_manifest(directory: Path, header: Mapping[str, Any], files: dict[str, FileRecord]) -> None:
    manifest = {**header, "files": dict(sorted(files.items()))}
    write_atomic(directory / MANIFEST, json.dumps(manifest, indent=1).encode())


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Serialise concurrent builds of one cache (a second process waits, then finds the files intact)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


Job = tuple[Any, ...]


def ensure_cache(directory: Path, header: Mapping[str, Any], jobs: Sequence[Job],
                 files_of: Callable[[Job], Sequence[str]], make: Callable[..., dict[str, FileRecord]], *,
                 workers: int, checksum_all: bool, desc: str) -> VerifiedCache:
    """Verify the cache in ``directory`` and redo every job whose files are missing or damaged; returns what
    its readers need to redo a file found damaged later (:func:`read_verified`).

    ``header`` must be JSON-equal to what built the files (it is stored in the manifest); ``files_of(job)``
    names a job's files, ``make(*job)`` writes them (with :func:`write_atomic`) and returns their records. It
    runs in ``workers`` spawned processes, so it must be a picklable module-level function (or a partial).
    """
    header = json.loads(json.dumps(header))  # as it reads back from the manifest (tuples become lists)
    owners = {name: job for job in jobs for name in files_of(job)}
    with locked(directory):
        for leftover in directory.rglob(".*.tmp"):  # from a killed generation
            leftover.unlink()
        files = _read_manifest(directory, header)
        known = copy.deepcopy(files)
        todo = [job for job in jobs
                if not all(_intact(directory / name, files.get(name), checksum_all) for name in files_of(job))]
        try:
            if todo:
                _run(directory, header, todo, make, files, workers, desc)
        finally:  # also after an interruption: vouch for the jobs that were finished
            if files != known:  # redone files, or re-hashed ones with a new mtime
                _write_manifest(directory, header, files)
    return VerifiedCache(directory, header, owners, make)


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


@dataclasses.dataclass(frozen=True)
class VerifiedCache:
    """A cache :func:`ensure_cache` verified, and how to redo any of its files: opening trusts a file whose size
    and mtime match the manifest (hashing them all is too slow), so damage that keeps both is only found when
    the file is read, and is mended there instead of failing every rerun. Picklable (``make`` is)."""

    directory: Path
    header: dict[str, Any]  # the manifest's header
    jobs: dict[str, Job]  # cached file (relative to ``directory``) -> the job that writes it
    make: Callable[..., dict[str, FileRecord]]

    def rebuild(self, path: Path, seen_mtime: int | None, error: DataFileError) -> None:
        """Redo the job of ``path``, which failed to read with ``error`` while its mtime was ``seen_mtime``, and
        record its new files in the manifest; a file of no job re-raises ``error``."""
        name = path.relative_to(self.directory).as_posix() if path.is_relative_to(self.directory) else None
        job = self.jobs.get(name)
        if job is None:
            raise error
        with locked(self.directory):
            if _mtime(path) != seen_mtime:
                return  # another reader (a DataLoader worker) rebuilt it meanwhile
            log.warning("%s; rebuilding it (job %s)", error, job)
            records = self.make(*job)
            files = _read_manifest(self.directory, self.header)
            if files:  # no manifest to update: the next ensure_cache verifies every file anyway
                files.update(records)
                _write_manifest(self.directory, self.header, files)


def read_verified(path: Path, reader: Callable[[Path], T], cache: VerifiedCache | None) -> T:
    """``reader(path)`` for a file of ``cache`` (None: a file of no cache, read as it is). Where it raises a
    :class:`DataFileError` (a bad zip CRC, a garbled or truncated file), the file's job is redone with a warning
    naming the file, and the file read again; a second failure propagates."""
    if cache is None:
        return reader(path)
    seen = _mtime(path)
    try:
        return reader(path)
    except DataFileError as error:
        cache.rebuild(path, seen, error)
    return reader(path)


def _run(directory: Path, header: Mapping[str, Any], jobs: list[Job], make: Callable[..., dict[str, FileRecord]],
         files: dict[str, FileRecord], workers: int, desc: str) -> None:
    """Run the jobs (in parallel unless one worker suffices), checkpointing the manifest as they finish."""
    workers = max(1, min(workers, os.cpu_count() or 1, len(jobs)))
    desc = f"{desc} ({len(jobs)} shapes)"
    last_save = time.monotonic()

    def record(result: dict[str, FileRecord]) -> None:
        nonlocal last_save
        files.update(result)
        if time.monotonic() - last_save > MANIFEST_EVERY_S:
            _write_manifest(directory, header, files)
            last_save = time.monotonic()

    if workers == 1:
        for job in progress(jobs, desc=desc):
            record(make(*job))
        return
    # spawn, not fork: the parent may hold torch/OpenMP threads, which a forked child can deadlock on
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(make, *job) for job in jobs]
        for future in progress(as_completed(futures), desc=desc, total=len(futures)):
            record(future.result())
    finally:  # on an error or Ctrl-C, drop the queued jobs instead of waiting for them
        pool.shutdown(cancel_futures=True)


# ----- items -------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class OccupancySampling:
    """Config fields of derived occupancy samples and of the items drawn from them; defaults are Occupancy
    Networks' (its ``points.npz``: 100k points uniform in the box of side 1.1; 300 input points with noise
    0.005; 2048 training queries; 100k points for IoU and for the surface metrics)."""

    # stored occupancy samples per shape: the first (1 - near_fraction) are uniform in the box of side
    # 1 + padding, the rest are surface points plus N(0, near_sigma) noise
    n_occupancy: int = 100_000
    near_fraction: float = 0.0
    near_sigma: float = 0.01
    padding: float = 0.1
    # what one item draws from the stored samples
    input_points: int = 300
    input_noise: float = 0.005
    query_points: int = 2048
    eval_surface_points: int = 100_000
    iou_points: int = 100_000  # uniform points for volumetric IoU in val/test items
    workers: int = 2  # processes deriving samples, capped at the CPU count
    checksum_all: bool = False  # hash every cached file when opening, not only those whose size or mtime changed

    @property
    def n_uniform(self) -> int:
        """How many of the stored occupancy samples are uniform (the split ``sample_queries`` makes)."""
        return self.n_occupancy - int(round(self.near_fraction * self.n_occupancy))

    def check_sampling(self, dataset: str) -> None:
        """Raise a ValueError naming the first bad sampling field."""
        check_fields(dataset, self, counts=("n_occupancy", "input_points", "query_points", "eval_surface_points",
                                            "iou_points", "workers"),
                     non_negative=("near_fraction", "near_sigma", "padding", "input_noise"))
        limits = (("near_fraction", 1, "1"), ("query_points", self.n_occupancy, "n_occupancy"),
                  ("iou_points", self.n_uniform, "the uniform occupancy samples (n_occupancy * (1 - near_fraction))"))
        for name, limit, source in limits:
            if getattr(self, name) > limit:
                raise ValueError(f"{dataset}: {name}={getattr(self, name)} exceeds {source} = {limit}")

    def sampling_params(self) -> dict[str, Any]:
        """The fields that change derived samples (the rest only change how items draw from them)."""
        return {name: getattr(self, name) for name in ("n_occupancy", "near_fraction", "near_sigma", "padding")}

    def occupancy_points(self, vertices: np.ndarray, faces: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One normalised shape's ``n_occupancy`` stored query points (:func:`harness.geometry.mesh.sample_queries`
        with these fields) in float16, as the cache keeps them: their occupancy is computed on exactly these values."""
        from harness.geometry.mesh import sample_queries  # heavy (trimesh): only deriving processes import it

        return sample_queries(vertices, faces, self.n_occupancy, rng, padding=self.padding,
                              near_fraction=self.near_fraction, near_sigma=self.near_sigma).astype(np.float16)


def shape_rng(seed: int, key: str) -> np.random.Generator:
    """The generator of one shape's derived samples, from the dataset's ``seed`` and the shape's ``key`` (its path in
    the dataset): the same samples in every build, worker process and order."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(key.encode()),)))


@dataclasses.dataclass(frozen=True)
class ItemSizes:
    """What one item of an implicit-shape dataset draws from the shape's stored samples."""

    input_points: int
    input_noise: float
    query_points: int
    eval_surface_points: int
    iou_points: int

    @classmethod
    def of(cls, config: Any) -> ItemSizes:
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(cls)})


class SeededSplit:
    """One split (a map-style dataset) whose items are drawn at random: training items draw afresh with a
    generator seeded from torch's global RNG (which DataLoader seeds per worker and epoch); val/test items
    are the same every time. torch is imported on first use, so configs can import this module cheaply."""

    def __init__(self, name: str, split: str, size: int, seed: int) -> None:
        self.name, self.split, self.size, self.seed = name, split, size, seed
        self.train = split == "train"

    def __len__(self) -> int:
        return self.size

    def fixed_rng(self, index: int, purpose: str) -> np.random.Generator:
        """A generator fixed by (seed, split, index, purpose): repeatable draws independent of each other."""
        key = (zlib.crc32(f"{self.split}/{purpose}".encode()), index)
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=key))

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The arrays of item ``index`` (without ``index``), drawn with ``rng``."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        import torch

        if not 0 <= index < self.size:
            raise IndexError(f"{self.name} {self.split} has {self.size} items, asked for {index}")
        # numpy, not torch, does the sampling and gathering: torch's multi-threaded indexing of these small
        # arrays is tens of times slower when the CPU is busy (e.g. with DataLoader workers)
        if self.train:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        else:
            rng = self.fixed_rng(index, "item")
        item = self.draw(index, rng)
        item[keys.INDEX] = np.int64(index)
        return {key: torch.from_numpy(np.asarray(value)) for key, value in item.items()}


# stored per-shape arrays an implicit item draws from (``*_part`` only in part-labelled datasets)
SAMPLE_ARRAYS = ("surface", "normals", "surface_part", "occ_points", "occupancy", "occ_part", "n_uniform", "label")


class SampledSplit(SeededSplit):
    """Items of the Occupancy Networks kind, drawn from one shape's stored samples: noisy input points and
    query/occupancy subsets; val/test add uniform ``iou_query``/``iou_occupancy`` for volumetric IoU and the
    ``surface``/``normals`` evaluation points (a fixed subset; training items never use them, so leave them out)."""

    def __init__(self, name: str, split: str, size: int, seed: int, sizes: ItemSizes) -> None:
        super().__init__(name, split, size, seed)
        self.sizes = sizes

    def shape(self, index: int) -> dict[str, np.ndarray]:
        """The stored samples of shape ``index`` (the keys of :data:`SAMPLE_ARRAYS` it has)."""
        raise NotImplementedError

    def draw(self, index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.draw_from(self.shape(index), index, rng)

    def draw_from(self, shape: dict[str, np.ndarray], index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """The item of shape ``index`` drawn from its stored arrays ``shape``."""
        sizes = self.sizes
        surface, occ_points = shape["surface"], shape["occ_points"]
        chosen = rng.choice(len(surface), sizes.input_points, replace=False)
        points = surface[chosen].astype(np.float32, copy=False)
        points = points + np.float32(sizes.input_noise) * rng.standard_normal(points.shape, dtype=np.float32)
        query = rng.choice(len(occ_points), sizes.query_points, replace=False)
        item = {
            keys.POINTS: points,
            keys.QUERY: occ_points[query].astype(np.float32, copy=False),
            keys.OCCUPANCY: shape["occupancy"][query].astype(np.float32),
            keys.LABEL: np.asarray(shape["label"]).astype(np.int64),
        }
        if "occ_part" in shape:
            item[keys.PART] = shape["occ_part"][query].astype(np.int64)
        if "surface_part" in shape:
            item[keys.POINTS_PART] = shape["surface_part"][chosen].astype(np.int64)
        if not self.train:
            # evaluation-only arrays: drawing and batching them cost a third of a training step's data time
            fixed = self.fixed_rng(index, "surface").choice(len(surface), sizes.eval_surface_points, replace=False)
            item[keys.SURFACE] = surface[fixed].astype(np.float32, copy=False)
            item[keys.NORMALS] = shape["normals"][fixed].astype(np.float32, copy=False)
            if "surface_part" in shape:
                item[keys.SURFACE_PART] = shape["surface_part"][fixed].astype(np.int64)
            uniform = rng.choice(int(shape["n_uniform"]), sizes.iou_points, replace=False)
            item["iou_query"] = occ_points[uniform].astype(np.float32, copy=False)
            item["iou_occupancy"] = shape["occupancy"][uniform].astype(np.float32)
        return item


_array_memo: OrderedDict[tuple[Any, ...], dict[str, np.ndarray]] = OrderedDict()
_array_memo_bytes = 0


def read_arrays(path: Path, names: Iterable[str], cache: VerifiedCache | None = None) -> dict[str, np.ndarray]:
    """The arrays ``names`` (those present) of the npz at ``path``, read-only, remembered in memory up to
    :data:`ARRAY_MEMO_BYTES` (least recently used forgotten first). Items of a training set re-read the same
    few hundred files every epoch, and reading one costs more than drawing an item from it. Keyed by the
    file's size and mtime too, so a rewritten cache file is read afresh. A file of ``cache`` that fails to read
    is rebuilt (:func:`read_verified`); any other unreadable file is a :class:`DataFileError` naming it."""
    return read_verified(path, functools.partial(_remembered_arrays, names=tuple(names)), cache)


def _remembered_arrays(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    global _array_memo_bytes
    try:
        status = path.stat()
    except FileNotFoundError as exc:
        raise DataFileError(path, "no such file") from exc
    key = (str(path), status.st_size, status.st_mtime_ns, names)
    arrays = _array_memo.get(key)
    if arrays is not None:
        _array_memo.move_to_end(key)
        return dict(arrays)
    arrays = load_npz(path, names, require_all=False)
    for array in arrays.values():
        array.setflags(write=False)  # shared by every later item: nobody may change them in place
    size = sum(array.nbytes for array in arrays.values())
    if size <= ARRAY_MEMO_BYTES:
        _array_memo[key] = arrays
        _array_memo_bytes += size
        while _array_memo_bytes > ARRAY_MEMO_BYTES:
            _array_memo_bytes -= sum(array.nbytes for array in _array_memo.popitem(last=False)[1].values())
    return dict(arrays)


class CachedSplit(SampledSplit):
    """A :class:`SampledSplit` over a cache of :func:`shape_files`; each item draws from one npz's sample arrays
    (:func:`read_arrays`: the cached mesh arrays are never read here; a damaged npz is rebuilt)."""

    arrays = SAMPLE_ARRAYS  # what an item reads of the shape's npz

    def __init__(self, name: str, split: str, size: int, seed: int, sizes: ItemSizes, cache: VerifiedCache) -> None:
        super().__init__(name, split, size, seed, sizes)
        self.cache = cache

    def shape(self, index: int) -> dict[str, np.ndarray]:
        return read_arrays(self.cache.directory / shape_files(self.split, index)[0], self.arrays, self.cache)
