"""Builtin encoders (entry point ``builtin_encoders``)."""
from harness.hooks import Register, hookimpl

from . import pointnet, resnet18_image


@hookimpl
def register_encoders(register: Register) -> None:
    register(pointnet.SPEC)
    register(pointnet.PER_POINT_SPEC)
    register(resnet18_image.SPEC)
