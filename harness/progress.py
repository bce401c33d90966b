"""What the harness shows while it works: log lines, and progress bars that stay quiet in CI and when output is not
a terminal."""
from __future__ import annotations

import logging
import os
import sys
from typing import Iterable, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def enabled() -> bool:
    """Bars show on an interactive terminal unless ``CI`` or ``HARNESS_QUIET`` is set."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get("HARNESS_QUIET"):
        return False
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str = "", total: int | None = None, leave: bool = False) -> Iterable[T]:
    return tqdm(iterable, desc=desc, total=total, leave=leave, disable=not enabled(), dynamic_ncols=True)


def setup_logging() -> None:
    """The commands' log format (the bench's worker processes set it up too)."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s", datefmt="%H:%M:%S")
