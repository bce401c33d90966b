"""Builtin datasets (entry point ``builtin_datasets``)."""
from harness.hooks import Register, hookimpl

from . import (cifar10, kinetics, mnist, modelnet40, s3dis, scannet, scenenn, shapenet_onet, shapenetpart,
               synthetic_images, synthetic_rooms, synthetic_shapes, synthetic_videos, synthetic_voxels)


@hookimpl
def register_datasets(register: Register) -> None:
    register(synthetic_shapes.SPEC)
    register(shapenet_onet.SPEC)
    register(modelnet40.SPEC)
    register(modelnet40.RESAMPLED_SPEC)
    register(shapenetpart.SPEC)
    register(shapenetpart.IMPLICIT_SPEC)
    register(synthetic_images.SPEC)
    register(synthetic_videos.SPEC)
    register(synthetic_voxels.SPEC)
    register(mnist.SPEC)
    register(cifar10.SPEC)
    register(kinetics.SPEC)
    register(synthetic_rooms.SPEC)
    register(scannet.SPEC)
    register(s3dis.SPEC)
    register(scenenn.SPEC)
