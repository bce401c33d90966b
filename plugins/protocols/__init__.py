"""Builtin protocols (entry point ``builtin_protocols``)."""
from harness.hooks import Register, hookimpl

from . import (classification, compression, contextualise, cross_dataset, holdout, multitask, quantisation,
               reconstruction, segmentation)


@hookimpl
def register_protocols(register: Register) -> None:
    register(reconstruction.SPEC)
    register(classification.SPEC)
    register(segmentation.SPEC)
    register(multitask.SPEC)
    register(holdout.SPEC)
    register(compression.SPEC)
    register(quantisation.SPEC)
    register(contextualise.SPEC)
    register(cross_dataset.SPEC)
