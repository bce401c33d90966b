"""Pieces every training protocol shares: seeding, devices, loaders, finite-loss checks, checkpoints."""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import io
import itertools
import logging
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, Sampler

from harness.curves import CURVE_FILE, CurvePoint, append_point, truncate_curve
from harness.progress import progress
from harness.timing import phase
from harness.training_config import TrainingConfig, learning_rate, schedule_steps

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class DeviceUnavailable(RuntimeError):
    """The configured device does not exist on this machine."""


def resolve_device(name: str) -> torch.device:
    """``auto`` takes CUDA when present; asking for CUDA without it is an error, not a silent CPU run."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device={name!r} was asked for but CUDA is not available; use device=cpu or device=auto")
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


def to_device(batch: dict, device: torch.device) -> dict:
    return {key: value.to(device, non_blocking=True) if torch.is_tensor(value) else value
            for key, value in batch.items()}


def check_finite(loss: torch.Tensor, step: int) -> None:
    """A NaN or infinite loss fails the run with that reason instead of training on garbage."""
    if not torch.isfinite(loss).all():
        raise FloatingPointError(f"loss is {loss.item()} at step {step}; the run stops here")


CHECKSUM_TAG = b"\nharness-sha256:"  # a checkpoint's trailer: the tag, the payload's sha256 (hex), a newline
_TRAILER_BYTES = len(CHECKSUM_TAG) + 64 + 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be trusted: unreadable, without its checksum, or not matching it."""


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic write of ``state`` followed by the sha256 of its bytes (torch.load ignores the trailer, so the file
    stays a plain torch checkpoint): a run killed mid-save keeps its previous checkpoint, and damage is caught on
    load. A full disk is reported as such, never as torch's ``unexpected pos``, and leaves no temporary file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        with open(tmp, "wb") as file:
            file.write(payload)
            file.write(CHECKSUM_TAG + hashlib.sha256(payload).hexdigest().encode() + b"\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"no space left on {path.parent} (writing {path.name})") from exc
        raise


def load_checkpoint(path: Path, device: torch.device, require_checksum: bool = True) -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint`, its checksum verified first. ``weights_only=True``: a checkpoint
    can never execute code when loaded. ``require_checksum=False`` accepts a plain ``torch.save`` file (a user's
    model); one with a trailer is verified either way."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    trailer = data[-_TRAILER_BYTES:]
    if trailer.startswith(CHECKSUM_TAG):
        data = data[:-_TRAILER_BYTES]
        if hashlib.sha256(data).hexdigest().encode() != trailer[len(CHECKSUM_TAG):-1]:
            raise CheckpointError(f"checkpoint {path} is damaged: its content does not match its sha256")
    elif require_checksum:
        raise CheckpointError(f"checkpoint {path} is damaged or incomplete: it carries no harness checksum")
    try:
        return torch.load(io.BytesIO(data), map_location=device, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} cannot be loaded ({type(exc).__name__}: {exc})") from exc


def set_aside(path: Path) -> Path:
    """Move a damaged file out of the way (kept for inspection as ``<name>.corrupt``, never reused)."""
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    return aside


def resume_state(run_dir: Path, device: torch.device) -> dict[str, Any] | None:
    """``run_dir/last.pt`` if it and ``best.pt`` are intact, else None: a damaged checkpoint is set aside (never
    silently trusted), with the best weights of the same training, and training restarts, saying so."""
    last, best = run_dir / "last.pt", run_dir / "best.pt"
    if not last.exists():
        return None
    try:
        state = load_checkpoint(last, device)
        if best.exists():
            load_checkpoint(best, device)
        return state
    except CheckpointError as exc:
        aside = [set_aside(path).name for path in (last, best) if path.exists()]
        log.warning("%s; set aside as %s, training restarts from step 0", exc, ", ".join(aside))
        return None


def random_states() -> dict[str, Any]:
    """Every random generator a training step may draw from (torch, CUDA, numpy, Python), in tensors and plain
    values so a ``weights_only`` load reads them back."""
    kind, keys, position, has_gauss, cached = np.random.get_state()
    states: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate(),
                              "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached]}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    kind, keys, position, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class _SkippingBatchSampler(Sampler[list[int]]):
    """A batch sampler that leaves out the first ``skip`` batches of its next pass (indices only: no item is
    loaded), so a resumed training continues the interrupted pass where it stopped."""

    def __init__(self, batches: BatchSampler) -> None:
        self.batches, self.skip = batches, 0

    def __iter__(self) -> Iterator[list[int]]:
        skip, self.skip = self.skip, 0
        return itertools.islice(iter(self.batches), skip, None)

    def __len__(self) -> int:
        return len(self.batches)


class BatchStream:
    """Endless shuffled training batches, reshuffled each pass (training is counted in steps, not epochs), whose
    position can be saved and restored exactly: the shuffling generator's state at the start of the current pass
    and the batches taken from it. The batches are those of ``DataLoader(shuffle=True, generator=...)``."""

    def __init__(self, data: Any, batch_size: int, seed: int, workers: int = 0, drop_last: bool = False) -> None:
        self.generator = torch.Generator()
        self.generator.manual_seed(seed)
        self._sampler = _SkippingBatchSampler(BatchSampler(RandomSampler(data, generator=self.generator),
                                                           batch_size, drop_last))
        self.loader = DataLoader(data, batch_sampler=self._sampler, num_workers=workers, generator=self.generator,
                                 worker_init_fn=_seed_worker, persistent_workers=workers > 0)
        self._pass_start, self._taken = self.generator.get_state(), 0
        self._batches = self._passes()

    def _passes(self) -> Iterator[dict]:
        while True:
            self._pass_start = self.generator.get_state()
            for batch in self.loader:
                self._taken += 1
                yield batch
            self._taken = 0

    def __next__(self) -> dict:
        return next(self._batches)

    def state(self) -> dict[str, Any]:
        return {"generator": self._pass_start, "taken": self._taken}

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved :meth:`state` (before the first batch is drawn)."""
        self.generator.set_state(state["generator"])
        self._sampler.skip = self._taken = int(state["taken"])


def fit(model: torch.nn.Module, train_data: Any, schedule: TrainingConfig, run_dir: Path, device: torch.device,
        seed: int, loss_fn: Callable[[torch.nn.Module, dict], torch.Tensor],
        validate: Callable[[torch.nn.Module], float], metric_name: str,
        parameters: Iterable[torch.nn.Parameter] | None = None) -> float:
    """Adam (AdamW with ``schedule.weight_decay``) on ``loss_fn`` for ``schedule.steps`` steps at the learning
    rates of :func:`harness.training_config.learning_rate`, resuming from ``run_dir/last.pt``: weights, optimiser,
    every random generator and the position in the shuffled data are restored, so on CPU (with ``workers=0``) an
    interrupted and resumed training ends bit for bit where an uninterrupted one does.

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
    batches = BatchStream(train_data, schedule.batch_size, seed, workers=schedule.workers,
                          drop_last=len(train_data) > schedule.batch_size)
    state = resume_state(run_dir, device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, best = int(state["step"]), float(state["best_val"])
        seconds_before = float(state["seconds"])
        loss_sum, loss_count = state["curve_loss"]
        batches.restore(state["batches"])
        restore_random_states(state["random"])
        log.info("resumed at step %d (best validation %s %.4f)", step, metric_name, best)
    curve = run_dir / CURVE_FILE
    truncate_curve(curve, step)  # what a previous session recorded after its last checkpoint is redone
    started = time.perf_counter()

    def seconds() -> float:
        return seconds_before + time.perf_counter() - started

    loss_every = max(1, schedule.steps // 50)
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
                                                      "seconds": seconds(), "curve_loss": [loss_sum, loss_count],
                                                      "batches": batches.state(), "random": random_states()})
    if not (run_dir / "best.pt").exists():  # every validation gave NaN: nothing can be selected
        raise FloatingPointError(f"validation {metric_name} was never a number (NaN at every check): no model "
                                 f"can be selected")
    model.load_state_dict(load_checkpoint(run_dir / "best.pt", device)["model"])
    return best


def as_batch(item: dict, device: torch.device) -> dict:
    """One dataset item as a batch of one, on ``device`` (non-tensor fields dropped)."""
    return {key: value.unsqueeze(0).to(device) for key, value in item.items() if torch.is_tensor(value)}
