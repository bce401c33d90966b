"""Builtin protocols (entry point ``builtin_protocols``)."""
from harness.hooks import Register, hookimpl

from . import classification, reconstruction


@hookimpl
def register_protocols(register: Register) -> None:
    register(reconstruction.SPEC)
    register(classification.SPEC)
