"""Data problems caught before training: every split a protocol reads is non-empty, and one item of it has the
sample keys (:mod:`harness.data`) the protocol reads of it.

Without this check an empty split surfaces late and misleadingly: an empty validation split scores NaN (or 0) and
training selects nothing (or the first checkpoint); an empty training split raises torch's bare
``num_samples=0``; a missing key a ``KeyError`` deep in a loss. Each protocol declares what it reads as
:data:`SplitKeys` (split name -> keys) and calls :func:`check_splits` before it trains anything.
"""
from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Iterator, Mapping

import numpy as np

from harness.contracts import Dataset
from harness.data import SPLITS

SplitKeys = Mapping[str, Iterable[str]]  # split name -> the sample keys a protocol reads of its items

# what a protocol does with each split, as its error message says
USES = {"train": "trains on it", "val": "validates and selects its model on it", "test": "evaluates on it"}


class SplitError(ValueError):
    """A split a protocol reads is empty, or its items lack a key the protocol reads."""


def merge_split_keys(*needs: SplitKeys) -> dict[str, tuple[str, ...]]:
    """The union of several declarations (e.g. the tasks of a multi-task protocol), keys in first-seen order."""
    merged: dict[str, dict[str, None]] = {}
    for need in needs:
        for split, keys in need.items():
            merged.setdefault(split, {}).update(dict.fromkeys(keys))
    return {split: tuple(keys) for split, keys in merged.items()}


@contextlib.contextmanager
def random_state_kept() -> Iterator[None]:
    """Training items draw from the global generators (torch's, see :class:`harness.datacache.SeededSplit`): an
    item read for the check must leave them as they were, so a valid run trains exactly as without it."""
    import torch

    python, numpy = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)


def _ordered(splits: Iterable[str]) -> list[str]:
    """Train, val, test first (the order a run reads them in), any other split after."""
    splits = list(splits)
    return [s for s in SPLITS if s in splits] + [s for s in splits if s not in SPLITS]


def check_splits(dataset: Dataset, needs: SplitKeys, protocol: str, role: str = "dataset") -> None:
    """Raise :class:`SplitError` naming the dataset, split (and keys) unless every split of ``needs`` is non-empty
    and its item 0 has the keys ``needs`` lists for it. Emptiness is checked for every split before any item is
    read. ``protocol`` and ``role`` (e.g. ``"source dataset"``) only word the message."""
    name = dataset.info.name
    splits = _ordered(needs)
    data = {split: dataset.split(split) for split in splits}
    for split in splits:
        if len(data[split]) == 0:
            raise SplitError(f"{role} {name!r} split {split!r} is empty; protocol {protocol} "
                             f"{USES.get(split, 'reads it')}")
    for split in splits:
        wanted = list(dict.fromkeys(needs[split]))
        if not wanted:
            continue
        with random_state_kept():
            item = data[split][0]
        missing = [key for key in wanted if key not in item]
        if missing:
            listed = ", ".join(repr(key) for key in missing)
            raise SplitError(f"{role} {name!r} split {split!r} item 0 lacks key{'s' if len(missing) > 1 else ''} "
                             f"{listed} that protocol {protocol} reads (it has: {', '.join(item)})")
