"""Progress bars that stay quiet in CI and when output is not a terminal."""
from __future__ import annotations

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
