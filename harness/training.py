"""Pieces every training protocol shares: seeding, devices, loaders, finite-loss checks, checkpoints."""
from __future__ import annotations

import dataclasses
import logging
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from harness.curves import CURVE_FILE, CurvePoint, append_point, truncate_curve
from harness.progress import progress
from harness.timing import phase
from harness.training_config import TrainingConfig, learning_rate, schedule_steps

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    """``auto`` takes CUDA when present; asking for CUDA without it is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={name!r} was asked for but CUDA is not available; use device=cpu or device=auto")
    return device


def _seed_worker(worker_id: int) -> None:
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(data: Any, batch_size: int, shuffle: bool, seed: int, workers: int = 0,
                drop_last: bool = False) -> DataLoader:
    generator = torch.Generator()
    generator.manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, num_workers=workers, drop_last=drop_last,
                      generator=generator, worker_init_fn=_seed_worker, persistent_workers=workers > 0)


def cycle(loader: DataLoader) -> Iterator[dict]:
    """Endless batches, reshuffled each pass: training is counted in steps, not epochs."""
    while True:
        yield from loader


def to_device(batch: dict, device: torch.device) -> dict:
    return {key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
            for key, value in batch.items()}


def check_finite(loss: torch.Tensor, step: int) -> None:
    """A NaN or infinite loss fails the run with that reason instead of training on garbage."""
    if not torch.isfinite(loss).all():
        raise FloatingPointError(f"loss is {loss.item()} at step {step}; the run stops here")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic write: a run killed mid-save keeps its previous checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, device: torch.device) -> dict[str, Any]:
    """``weights_only=True``: a checkpoint can never execute code when loaded."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise RuntimeError(f"checkpoint {path} cannot be loaded ({type(exc).__name__}: {exc}); "
                           f"delete it to start this run afresh") from exc


def resume_state(path: Path, device: torch.device) -> dict[str, Any] | None:
    """The last checkpoint, or None; a corrupted one is set aside (never silently trusted) and training restarts."""
    if not path.exists():
        return None
    try:
        return load_checkpoint(path, device)
    except RuntimeError as exc:
        aside = path.with_suffix(".corrupt")
        os.replace(path, aside)
        log.warning("%s; set aside as %s, training starts afresh", exc, aside.name)
        return None


def fit(model: torch.nn.Module, train_data: Any, schedule: TrainingConfig, run_dir: Path, device: torch.device,
        seed: int, loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor],
        validate: Callable[[torch.nn.Module], float], metric_name: str,
        parameters: Iterable[torch.nn.Parameter] | None = None) -> float:
    """Adam (AdamW with ``schedule.weight_decay``) on ``loss_fn`` for ``schedule.steps`` steps at the learning
    rates of :func:`harness.training_config.learning_rate`, resuming from ``run_dir/last.pt``.

    Every ``validate_every`` steps (and at the end) ``validate`` scores the model, higher is better;
    the best weights go to ``run_dir/best.pt``. Returns the best validation score. ``parameters``
    restricts what is optimised (e.g. a decoder on a frozen encoder). The training curve goes to
    ``run_dir/curve.jsonl`` (:mod:`harness.curves`): a point at every validation, and a training-loss point every
    ``steps // 50`` steps between, so convergence can be seen; the time goes to :mod:`harness.timing`'s phases.
    """
    schedule = dataclasses.replace(schedule, steps=schedule_steps(schedule, len(train_data)), epochs=0.0)
    optimizer = torch.optim.AdamW(model.parameters() if parameters is None else parameters, lr=schedule.lr,
                                  weight_decay=schedule.weight_decay)
    step, best = 0, -float("inf")
    seconds_before, loss_sum, loss_count = 0.0, 0.0, 0  # the curve's clock and the loss since its last point
    state = resume_state(run_dir / "last.pt", device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, best = int(state["step"]), float(state["best_val"])
        seconds_before = float(state.get("seconds", 0.0))
        loss_sum, loss_count = state.get("curve_loss", (0.0, 0))
        log.info("resumed at step %d (best validation %s %.4f)", step, metric_name, best)
    curve = run_dir / CURVE_FILE
    truncate_curve(curve, step)  # what a previous session recorded after its last checkpoint is redone
    started = time.perf_counter()

    def seconds() -> float:
        return seconds_before + time.perf_counter() - started

    loss_every = max(1, schedule.steps // 50)
    loader = make_loader(train_data, schedule.batch_size, shuffle=True, seed=seed + step, workers=schedule.workers,
                         drop_last=len(train_data) > schedule.batch_size)
    batches = cycle(loader)
    for step in progress(range(step, schedule.steps), desc="train", total=schedule.steps - step):
        model.train()
        lr = learning_rate(schedule, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        with phase("data"):
            batch = to_device(next(batches), device)
        with phase("train"):
            loss = loss_fn(model, batch)
            check_finite(loss, step)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
        done = step + 1
        validating = done % schedule.validate_every == 0 or done == schedule.steps
        if validating:
            with phase("validate"):
                score = validate(model)
            if score > best:
                best = score
                with phase("checkpoint"):
                    save_checkpoint(run_dir / "best.pt", {"model": model.state_dict(), "step": done})
            log.info("step %d: loss %.4f, validation %s %.4f (best %.4f)", done, loss.item(), metric_name, score, best)
        if validating or done % loss_every == 0:
            validation = (metric_name, score) if validating else (None, None)
            append_point(curve, CurvePoint(done, seconds(), loss_sum / loss_count, lr, *validation))
            loss_sum, loss_count = 0.0, 0
        if done % schedule.checkpoint_every == 0 or done == schedule.steps:
            with phase("checkpoint"):
                save_checkpoint(run_dir / "last.pt", {"model": model.state_dict(), "step": done,
                                                      "optimizer": optimizer.state_dict(), "best_val": best,
                                                      "seconds": seconds(), "curve_loss": [loss_sum, loss_count]})
    model.load_state_dict(load_checkpoint(run_dir / "best.pt", device)["model"])
    return best


def as_batch(item: dict, device: torch.device) -> dict:
    """One dataset item as a batch of one, on ``device`` (non-tensor fields dropped)."""
    return {key: value.unsqueeze(0).to(device) for key, value in item.items() if torch.is_tensor(value)}
