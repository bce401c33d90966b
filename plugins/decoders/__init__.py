"""Builtin decoders (entry point ``builtin_decoders``)."""
from harness.hooks import Register, hookimpl

from . import classifier, contextualiser, joint, occupancy, point_segmentation, segmentation, semantic, udf


@hookimpl
def register_decoders(register: Register) -> None:
    register(occupancy.SPEC)
    register(classifier.SPEC)
    register(segmentation.SPEC)
    register(joint.SPEC)
    register(point_segmentation.SPEC)
    register(udf.SPEC)
    register(semantic.SPEC)
    register(contextualiser.SPEC)
