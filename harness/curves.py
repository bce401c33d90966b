"""Training curves: the points :func:`harness.training.fit` records in ``curve.jsonl`` beside its checkpoints.

One JSON object per line, appended as training goes, so an interrupted run keeps what it recorded; a resumed
training first cuts the file back to its checkpoint's step, so the file ends up as an uninterrupted run's
(up to the seconds). Torch-free: the store and the leaderboards read curves too.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CURVE_FILE = "curve.jsonl"


@dataclass(frozen=True)
class CurvePoint:
    """The state of a training after ``step`` optimiser steps; ``metric``/``value`` are None at points that
    only sample the training loss (between validations)."""

    step: int
    seconds: float  # wall time spent in this training so far, earlier sessions before a resume included
    loss: float | None  # mean training loss over the steps since the previous point
    lr: float  # the learning rate of the last step taken
    metric: str | None = None
    value: float | None = None


def _line(point: CurvePoint) -> str:
    return json.dumps(asdict(point), sort_keys=True) + "\n"


def append_point(path: Path, point: CurvePoint) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write(_line(point))


def read_curve(path: Path) -> list[CurvePoint]:
    """The points of a curve file (none when it does not exist)."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [CurvePoint(**json.loads(line)) for line in lines if line.strip()]


def truncate_curve(path: Path, step: int) -> None:
    """Keep the points at or before ``step`` (none for a fresh start), replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = [point for point in read_curve(path) if point.step <= step]
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(_line(point) for point in kept), encoding="utf-8")
    os.replace(tmp, path)


def collect_curves(run_dir: Path) -> dict[str, list[CurvePoint]]:
    """Every curve under a run folder, keyed by its stage: the folder it lies in relative to ``run_dir``
    ("" for the run folder itself, e.g. "stage1" for a protocol's first stage)."""
    curves = {}
    for path in sorted(Path(run_dir).rglob(CURVE_FILE)):
        stage = path.parent.relative_to(run_dir).as_posix()
        curves["" if stage == "." else stage] = read_curve(path)
    return curves
