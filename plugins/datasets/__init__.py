"""Builtin datasets (entry point ``builtin_datasets``)."""
from harness.hooks import Register, hookimpl

from . import synthetic_shapes


@hookimpl
def register_datasets(register: Register) -> None:
    register(synthetic_shapes.SPEC)
