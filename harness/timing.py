"""Where a run's time goes: seconds per phase, summed in this process while a run is measured.

The training loop and the runner mark their phases with :func:`phase`; the runner restarts the totals when a
run begins (:func:`restart`) and records them (:func:`run_times`) as the run's metrics of split ``time``. A
process runs one run at a time (bench workers included), so a per-process accumulator suffices.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Iterator

TIME_SPLIT = "time"
# What fit() marks: fetching training batches, optimiser steps (forward, backward, update), validation, and
# writing checkpoints.
TRAINING_PHASES = ("data", "train", "validate", "checkpoint")
# Every phase of a run, in the order a run goes through them: the dataset build (or open), the training phases,
# and the rest of the protocol (``evaluate``: test evaluation, mesh extraction, compression...).
PHASES = ("dataset", *TRAINING_PHASES, "evaluate")

_seconds: defaultdict[str, float] = defaultdict(float)


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Add the wall time of the block to ``name``'s total."""
    started = time.perf_counter()
    try:
        yield
    finally:
        _seconds[name] += time.perf_counter() - started


def restart() -> None:
    """Zero every phase's total: a new run starts in this process."""
    _seconds.clear()


def run_times(protocol_s: float, total_s: float) -> dict[str, float]:
    """``<phase>_s`` -> seconds since :func:`restart`, and ``total_s``; ``evaluate`` is the protocol's time
    (``protocol_s``) outside the training phases."""
    times = {f"{name}_s": _seconds[name] for name in ("dataset", *TRAINING_PHASES)}
    times["evaluate_s"] = protocol_s - sum(_seconds[name] for name in TRAINING_PHASES)
    times["total_s"] = total_s
    return times
