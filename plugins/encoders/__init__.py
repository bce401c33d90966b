"""Builtin encoders (entry point ``builtin_encoders``)."""
from harness.hooks import Register, hookimpl

from . import ndf, point_transformer, pointnet, r3d, resnet18_image, resnet_cifar, shapenets_cnn, voxnet


@hookimpl
def register_encoders(register: Register) -> None:
    register(pointnet.SPEC)
    register(pointnet.PER_POINT_SPEC)
    register(resnet18_image.SPEC)
    register(resnet_cifar.SPEC)
    register(r3d.SPEC)
    register(voxnet.SPEC)
    register(shapenets_cnn.SPEC)
    register(point_transformer.SPEC)
    register(ndf.SPEC)
