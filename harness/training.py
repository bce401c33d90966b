"""Pieces every training protocol shares: seeding, devices, loaders, finite-loss checks, checkpoints."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader


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
