"""Builtin compressors (entry point ``builtin_compressors``): bfp, dsconv, cosconv, chebconv."""
from harness.hooks import Register, hookimpl

from . import bfp, chebconv, cosconv, dsconv


@hookimpl
def register_compressors(register: Register) -> None:
    register(bfp.SPEC)
    register(dsconv.SPEC)
    register(cosconv.SPEC)
    register(chebconv.SPEC)
