"""pluggy hook specifications: one registrar hook per component kind.

A plugin module implements any of these, e.g.::

    from harness.hooks import hookimpl

    @hookimpl
    def register_encoders(register):
        register(SPEC)

and is listed as an entry point in the group ``harness`` of its package.
"""
from __future__ import annotations

from typing import Callable

import pluggy

from harness.specs import ComponentSpec, Kind

PROJECT = "harness"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[ComponentSpec], None]


class HarnessHooks:
    @hookspec
    def register_encoders(self, register: Register) -> None:
        """Register encoder specs by calling ``register(spec)``."""

    @hookspec
    def register_decoders(self, register: Register) -> None:
        """Register decoder specs by calling ``register(spec)``."""

    @hookspec
    def register_compressors(self, register: Register) -> None:
        """Register compressor specs by calling ``register(spec)``."""

    @hookspec
    def register_datasets(self, register: Register) -> None:
        """Register dataset specs by calling ``register(spec)``."""

    @hookspec
    def register_protocols(self, register: Register) -> None:
        """Register protocol specs by calling ``register(spec)``."""


HOOK_BY_KIND: dict[Kind, str] = {
    Kind.ENCODER: "register_encoders",
    Kind.DECODER: "register_decoders",
    Kind.COMPRESSOR: "register_compressors",
    Kind.DATASET: "register_datasets",
    Kind.PROTOCOL: "register_protocols",
}
