"""Trivial floors: what a predictor that ignores its input scores on a test set, computed from the data alone
(the majority training class, the mean training shape, the best constant), so a leaderboard can tell a model
that learned from one that merely matches the data's statistics.

Protocols read their training split once (:func:`training_arrays`), build their trivial predictors with the pure
numpy functions here, score them with their own metric code (so floors and trained figures are computed alike)
and record the results as metrics of split
:data:`FLOOR_SPLIT`, named as their test metrics. Floors depend on the data and the protocol's evaluation
settings only, so they are computed once per (dataset, setting) and kept as JSON beside the dataset caches
(:func:`cached`); a damaged file is detected by its checksum and recomputed.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from harness.contracts import SplitData
from harness.data import IGNORE_INDEX
from harness.datacache import fingerprint, locked, write_atomic
from harness.metrics.directions import metric
from harness.specs import Kind
from harness.store import Metric

if TYPE_CHECKING:
    from harness.runner import RunSetup

log = logging.getLogger(__name__)
FLOOR_SPLIT = "floor"
FLOORS_FILE = "floors.json"
# Cells per side of the grid the mean training shape is averaged on, and the training occupancy samples wanted
# per cell on average (the training items are drawn several times over, up to MAX_PASSES, when one pass gives fewer).
MEAN_SHAPE_RESOLUTION = 16
SAMPLES_PER_CELL = 64
MAX_PASSES = 8
T = TypeVar("T")


# ----- trivial predictors ------------------------------------------------------------------------------------


def majority_label(labels: np.ndarray, ignore: int = IGNORE_INDEX) -> int:
    """The most frequent label, ``ignore`` left out; a tie goes to the smallest label, so the floor does not
    depend on the order the data was read in."""
    labels = np.asarray(labels).reshape(-1)
    labels = labels[labels != ignore]
    if len(labels) == 0:
        raise ValueError("no labels to take the majority of")
    if (labels < 0).any():
        raise ValueError(f"labels must be >= 0 (or {ignore}, ignored), found {int(labels.min())}")
    return int(np.argmax(np.bincount(labels)))  # argmax: the first (smallest) of equal counts


def majority_per_group(groups: np.ndarray, labels: np.ndarray, ignore: int = IGNORE_INDEX) -> dict[int, int]:
    """group id -> :func:`majority_label` of its labels, for every group with a label that is not ``ignore``
    (e.g. the majority part of each category)."""
    groups, labels = np.asarray(groups).reshape(-1), np.asarray(labels).reshape(-1)
    if groups.shape != labels.shape:
        raise ValueError(f"{len(groups)} group ids for {len(labels)} labels")
    kept = labels != ignore
    return {int(group): majority_label(labels[kept & (groups == group)], ignore)
            for group in np.unique(groups[kept])}


def best_constant_l1(values: np.ndarray) -> float:
    """The constant with the smallest mean absolute difference to ``values``: their median."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) == 0:
        raise ValueError("no values to fit a constant to")
    return float(np.median(values))


def mean_absolute_error(values: np.ndarray, constant: float) -> float:
    """Mean ``|value - constant|``: what predicting ``constant`` everywhere scores."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) == 0:
        raise ValueError("no values to score")
    return float(np.abs(values - constant).mean())


@dataclass(frozen=True)
class MeanOccupancy:
    """The mean occupancy of many shapes on a regular grid of cells over a box, read back anywhere by trilinear
    interpolation between cell centres (constant beyond the outermost centres): the mean shape as a field of
    occupancy probabilities, which a protocol thresholds and meshes exactly as a network's output."""

    values: np.ndarray  # [R, R, R] mean occupancy of each cell
    low: np.ndarray  # [3] the box's lower corner
    high: np.ndarray  # [3] its upper corner

    def __call__(self, points: np.ndarray) -> np.ndarray:
        from scipy.ndimage import map_coordinates

        cell = (self.high - self.low) / np.asarray(self.values.shape)
        coordinates = (np.asarray(points, dtype=np.float64) - self.low) / cell - 0.5
        return map_coordinates(self.values, coordinates.T, order=1, mode="nearest")


def mean_occupancy(points: np.ndarray, occupancy: np.ndarray, resolution: int = MEAN_SHAPE_RESOLUTION
                   ) -> MeanOccupancy:
    """The mean of occupancy samples (``points`` [N, 3], ``occupancy`` [N] in {0, 1}, pooled over shapes drawn
    alike) in each of ``resolution``^3 cells over the samples' bounding box; a cell without samples takes the
    mean of all samples, the best constant guess."""
    points, occupancy = np.asarray(points, dtype=np.float64), np.asarray(occupancy, dtype=np.float64).reshape(-1)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) != len(occupancy) or len(points) == 0:
        raise ValueError(f"expected points [N, 3] with N occupancies, N > 0; got {points.shape} and "
                         f"{occupancy.shape}")
    low, high = points.min(axis=0), points.max(axis=0)
    high = np.where(high > low, high, low + 1.0)  # a flat axis still gets cells of some size
    index = np.clip(((points - low) / (high - low) * resolution).astype(np.int64), 0, resolution - 1)
    flat = np.ravel_multi_index(index.T, (resolution,) * 3)
    counts = np.bincount(flat, minlength=resolution ** 3)
    sums = np.bincount(flat, weights=occupancy, minlength=resolution ** 3)
    values = np.where(counts > 0, sums / np.maximum(counts, 1), occupancy.mean())
    return MeanOccupancy(values.reshape((resolution,) * 3), low, high)


# Occupancy levels of the mean shape tried as its surface (the one fitting the validation shapes best is kept).
MEAN_SHAPE_LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 20))


def at_level(field: Callable[[np.ndarray], np.ndarray], level: float) -> Callable[[np.ndarray], np.ndarray]:
    """``field`` remapped so that its ``level`` set reads 0.5, monotonically (piecewise linear, 0 and 1 kept): a
    protocol thresholding at 0.5 then takes the field's ``level`` set as the surface."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")

    def remapped(points: np.ndarray) -> np.ndarray:
        value = np.asarray(field(points), dtype=np.float64)
        return np.where(value < level, 0.5 * value / level, 0.5 + 0.5 * (value - level) / (1 - level))
    return remapped


def best_level(field: Callable[[np.ndarray], np.ndarray], points: Sequence[np.ndarray],
               occupancy: Sequence[np.ndarray], levels: Sequence[float] = MEAN_SHAPE_LEVELS) -> float:
    """The level of ``field`` whose inside (values >= level) has the highest mean IoU with the shapes given as
    ``points`` [N_i, 3] and their ``occupancy`` [N_i] (e.g. the validation shapes' uniform IoU points); ties go to
    the lowest level. A shape with nothing inside either set counts IoU 1, as in volumetric IoU."""
    scores = np.zeros(len(levels))
    for shape_points, inside in zip(points, occupancy):
        values, inside = np.asarray(field(shape_points)), np.asarray(inside).reshape(-1) >= 0.5
        for k, level in enumerate(levels):
            predicted = values >= level
            union = np.count_nonzero(predicted | inside)
            scores[k] += np.count_nonzero(predicted & inside) / union if union else 1.0
    return float(levels[int(np.argmax(scores))])


def training_arrays(split: SplitData, keys: Sequence[str], min_count: int = 0) -> dict[str, list[np.ndarray]]:
    """The arrays ``keys`` of every item of a (training) split, one list entry per item read; the split is read
    again (up to :data:`MAX_PASSES` times) until the first key's arrays hold ``min_count`` values in all. Training
    items are random draws seeded from torch's global generator, so they are read under a fixed seed (leaving the
    caller's random state as it was): the floor does not depend on when it is computed."""
    import torch

    arrays: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(MAX_PASSES):
            for index in range(len(split)):
                item = split[index]
                for key in keys:
                    arrays[key].append(np.asarray(item[key]))
            if sum(array.size for array in arrays[keys[0]]) >= min_count:
                break
    return arrays


def best_per_metric(candidates: Sequence[Mapping[tuple[str, str | None], float]],
                    higher_is_better: Callable[[str], bool | None]) -> dict[tuple[str, str | None], float]:
    """The best value of each (metric, class) over several trivial predictors' figures (a floor is the best
    that ignoring the input achieves); metrics without a direction are left out."""
    best: dict[tuple[str, str | None], float] = {}
    for figures in candidates:
        for key, value in figures.items():
            higher = higher_is_better(key[0])
            if higher is None or math.isnan(value):
                continue
            if key not in best or (value > best[key] if higher else value < best[key]):
                best[key] = value
    return best


# ----- the cache ---------------------------------------------------------------------------------------------


def metrics_to_json(metrics: Sequence[Metric]) -> list[list[Any]]:
    """Floor metrics as cached: ``[name, class_name, value]`` each (split and direction follow from the name)."""
    return [[m.name, m.class_name, m.value] for m in metrics]


def metrics_from_json(rows: Sequence[Sequence[Any]]) -> list[Metric]:
    """The floor metrics :func:`metrics_to_json` wrote."""
    return [metric(FLOOR_SPLIT, str(name), float(value), class_name) for name, class_name, value in rows]



def _checksum(key: Any, payload: Any) -> str:
    return hashlib.sha256(json.dumps({"key": key, "payload": payload}, sort_keys=True).encode()).hexdigest()


def _read(path: Path, key: Any) -> Any:
    """The payload stored for ``key`` at ``path``; None when there is none, or it is damaged or for another key."""
    try:
        record = json.loads(path.read_text())
        if record["key"] != key or record["sha256"] != _checksum(record["key"], record["payload"]):
            raise ValueError("its checksum or key does not match")
        return record["payload"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("floors in %s are unusable (%s); recomputing", path, exc)
        return None


def cached(directory: Path, key: Mapping[str, Any], compute: Callable[[], Any], decode: Callable[[Any], T]) -> T:
    """``decode(payload)`` of the JSON payload ``compute()`` returned for ``key``, computed once and stored under
    ``directory/<hash of key>/``; concurrent runs wait for each other. A stored payload that fails its checksum,
    or that ``decode`` rejects (ValueError, KeyError, TypeError), is recomputed."""
    key = json.loads(json.dumps(key, sort_keys=True, default=str))  # as it reads back from the file
    entry = Path(directory) / fingerprint(key)
    with locked(entry):
        payload = _read(entry / FLOORS_FILE, key)
        if payload is not None:
            try:
                return decode(payload)
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("floors in %s are unusable (%s); recomputing", entry, exc)
        payload = json.loads(json.dumps(compute()))
        record = {"key": key, "payload": payload, "sha256": _checksum(key, payload)}
        write_atomic(entry / FLOORS_FILE, json.dumps(record, indent=1, sort_keys=True).encode())
        return decode(payload)


def cached_for_run(setup: RunSetup, protocol: str, setting: Mapping[str, Any], compute: Callable[[], Any],
                   decode: Callable[[Any], T]) -> T:
    """:func:`cached` in the run's dataset cache (``<paths.cache>/floors``), keyed by the protocol that computes
    the floors (name and version), its evaluation ``setting``, and the run's dataset: its fingerprint and its
    config (the item sizes a test item draws are not part of every dataset's fingerprint)."""
    spec = setup.registry.get(Kind.PROTOCOL, protocol)
    key = {"protocol": [spec.name, spec.version], "setting": dict(setting),
           "dataset": [setup.dataset.info.fingerprint, dataclasses.asdict(setup.config("dataset"))]}
    return cached(Path(setup.cfg.paths.cache) / "floors", key, compute, decode)
