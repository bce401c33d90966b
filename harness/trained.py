"""Trained weights shared between runs: a model trained once for a recipe is reused by every run that
trains the same recipe (a compression or quantisation run reuses the baseline its task's protocol trained;
hold-out stage 1 reuses the multi-task training it repeats).

The recipe is everything that decides the weights: the trainer (protocol name, version and config), the
components (names, versions, configs), the dataset fingerprint, the seed, the device type and the harness
version. Entries live in ``<paths.cache>/trained/<key>/``: ``model.pt`` (the selected weights), ``curve.jsonl``
(the training curve, put back in every run that reuses the weights, so each has its curve) and ``record.json``
(the recipe, the best validation score, the weights' sha256); training checkpoints stay in
the run folder, so an interrupted run resumes as any other. A damaged entry is detected by its checksum and retrained; concurrent
runs of one recipe wait for each other. ``force=true`` reruns a run, not its cached training: delete the
entry (or the ``trained`` folder) to retrain.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

import harness
from harness.curves import CURVE_FILE
from harness.datacache import fingerprint, locked, sha256_file, write_atomic
from harness.runner import RunContext
from harness.specs import Kind
from harness.training import load_checkpoint, save_checkpoint, seed_everything

log = logging.getLogger(__name__)
WEIGHTS = "model.pt"
RECORD = "record.json"


def recipe(ctx: RunContext, trainer: str, trainer_config: Any, components: Mapping[str, Any]) -> dict[str, Any]:
    """What decides trained weights; ``components`` maps a role to (spec, config) of each trained part."""
    spec = ctx.registry.get(Kind.PROTOCOL, trainer)
    return {
        "trainer": [spec.name, spec.version, _fields(trainer_config, spec.config)],
        "components": {role: [part_spec.name, part_spec.version, _fields(config, part_spec.config)]
                       for role, (part_spec, config) in sorted(components.items())},
        "dataset": ctx.dataset.info.fingerprint,
        "seed": ctx.seed,
        "device": torch.device(ctx.device).type,
        "harness": harness.__version__,
    }


def _fields(config: Any, cls: type) -> Any:
    """The values of ``cls``'s fields (a Hydra-built config is a subclass with a ``name`` besides)."""
    if not dataclasses.is_dataclass(config):
        return config
    return {f.name: _plain(getattr(config, f.name)) for f in dataclasses.fields(cls)}


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def train_once(ctx: RunContext, model: nn.Module, recipe_: Mapping[str, Any], directory: Path,
               train: Callable[[Path], float]) -> float:
    """Load ``model``'s weights for ``recipe_`` if a verified entry exists; else ``train(directory)`` (which
    fits ``model`` in place, with resumable checkpoints under ``directory``, a folder of the run) and store
    the result. Either way ``directory`` gets the weights as ``model.pt`` (a hard link where possible) and the
    training's ``curve.jsonl``, and the random generators are reseeded with the run's seed, so whatever the run
    does next (a fresh head's initialisation, a fine-tuning) does not depend on whether the training was cached.
    Returns the best validation score."""
    key = fingerprint(recipe_)
    entry = Path(ctx.cfg.paths.cache) / "trained" / key
    with locked(entry):
        best = _load(entry, model, key, ctx.device)
        if best is not None:
            log.info("reusing trained weights %s (best validation %.4f)", entry, best)
            _copy_curve(entry / CURVE_FILE, directory / CURVE_FILE)
        else:
            best = train(directory)
            save_checkpoint(entry / WEIGHTS, {"model": model.state_dict()})
            _copy_curve(directory / CURVE_FILE, entry / CURVE_FILE)
            record = {"key": key, "recipe": recipe_, "best_val": best, "sha256": sha256_file(entry / WEIGHTS)}
            write_atomic(entry / RECORD, json.dumps(record, indent=1, sort_keys=True, default=str).encode())
        _share(entry / WEIGHTS, directory / WEIGHTS)
    seed_everything(ctx.seed)
    return best


def _share(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system
        shutil.copyfile(source, target)


def _copy_curve(source: Path, target: Path) -> None:
    """Copy a training curve (never link it: a curve file is appended to in place); without one (an entry older
    than curves) the target's is removed, so no stale curve of a partial training stands for the weights."""
    if source.exists():
        write_atomic(target, source.read_bytes())
    else:
        target.unlink(missing_ok=True)


def _load(entry: Path, model: nn.Module, key: str, device: torch.device) -> float | None:
    """The entry's best score after loading its weights into ``model``; None (and the entry cleared) when it
    is missing, incomplete, for another recipe, or damaged."""
    try:
        record = json.loads((entry / RECORD).read_text())
        if record["key"] != key or sha256_file(entry / WEIGHTS) != record["sha256"]:
            raise ValueError("its record does not match the weights or the recipe")
        # the record's sha256 was just verified, so weights cached by an older harness (no trailer) are trusted too
        model.load_state_dict(load_checkpoint(entry / WEIGHTS, device, require_checksum=False)["model"])
        return float(record["best_val"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
        log.warning("trained weights in %s are unusable (%s); retraining", entry, exc)
        for name in (RECORD, WEIGHTS):
            (entry / name).unlink(missing_ok=True)
        return None
