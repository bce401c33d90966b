"""Builtin decoders (entry point ``builtin_decoders``)."""
from harness.hooks import Register, hookimpl

from . import classifier, joint, occupancy, point_segmentation, segmentation


@hookimpl
def register_decoders(register: Register) -> None:
    register(occupancy.SPEC)
    register(classifier.SPEC)
    register(segmentation.SPEC)
    register(joint.SPEC)
    register(point_segmentation.SPEC)
