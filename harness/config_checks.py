"""Checks a config dataclass runs on itself in ``__post_init__``, so that a degenerate setting (a zero width, a
negative step count) is refused the moment the config is built: by :func:`harness.config.check_run_config` before
a run is recorded, and by anyone constructing the config in code. Third-party plugins call the same helpers.

Kept free of torch and Hydra: plugin config modules import it, and listing components must stay fast.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


class ConfigError(ValueError):
    """A refused configuration; its message is one line naming the key."""


class FieldError(ConfigError):
    """One field's value is refused. ``field`` is the field's name within its config, so that the runner can name
    the full key (``encoder.hidden``) and the component it belongs to."""

    def __init__(self, field: str, value: Any, requirement: str) -> None:
        super().__init__(f"{field}={value!r}: {requirement}")
        self.field, self.value, self.requirement = field, value, requirement


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (which Python counts as a number): what a numeric config field accepts."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require(config: object, names: Iterable[str], ok: Callable[[Any], bool], requirement: str) -> None:
    """Raise a FieldError for the first named field failing ``ok``; a list field must pass ``ok`` entry by entry, and
    a value that is not a number fails."""
    for name in names:
        value = getattr(config, name)
        listed = isinstance(value, (list, tuple))
        if not all(isinstance(entry, (int, float)) and ok(entry) for entry in (value if listed else [value])):
            raise FieldError(name, value, f"every entry {requirement}" if listed else requirement)


def require_positive(config: object, *names: str) -> None:
    """Each named field (a number, or a list of numbers such as per-stage widths) is > 0: sizes, widths, counts,
    step intervals and learning rates that would otherwise build an empty layer or divide by zero."""
    _require(config, names, lambda value: value > 0, "must be > 0")


def require_non_negative(config: object, *names: str) -> None:
    """Each named field (a number, or a list of numbers) is >= 0: counts where 0 means "none" (e.g. hidden=0 for a
    single linear layer)."""
    _require(config, names, lambda value: value >= 0, "must be >= 0")


def require_choice(config: object, name: str, choices: Iterable[str]) -> None:
    """The named field is one of ``choices``."""
    value, allowed = getattr(config, name), list(choices)
    if value not in allowed:
        raise FieldError(name, value, f"expected one of {allowed}")
