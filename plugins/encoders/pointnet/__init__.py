"""ResNet-PointNet encoder of Occupancy Networks: a point cloud [B, N, 3] to a global code [B, c].

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import require_positive
from harness.specs import ComponentSpec, EncoderCaps, Kind


@dataclass
class PointNetConfig:
    """Defaults are the paper's sizes (ONet point-cloud completion: hidden 512, code 512)."""

    hidden: int = 512  # width h of the residual blocks (the first linear maps 3 -> 2h)
    code_size: int = 512  # size c of the global code

    def __post_init__(self) -> None:
        require_positive(self, "hidden", "code_size")


SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="pointnet",
    factory="harness_plugins.encoders.pointnet.model:build",
    config=PointNetConfig,
    capabilities=EncoderCaps(consumes="points", produces="global"),
    version="1",
    citation=('Mescheder et al., "Occupancy Networks: Learning 3D Reconstruction in Function Space", '
              "CVPR 2019"),
    description="ResNet-PointNet: five residual FC blocks with max-pool feature concatenation, to a global code.",
    profiles={
        "smoke": {"hidden": 16, "code_size": 16},
        "quick": {"hidden": 64, "code_size": 64},
    },
)

# The conventional per-point baseline of the generalising paper: the same encoder, its per-point features.
PER_POINT_SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="pointnet_per_point",
    factory="harness_plugins.encoders.pointnet.model:build_per_point",
    config=PointNetConfig,
    capabilities=EncoderCaps(consumes="points", produces="points"),
    version="2",  # 2: local features of the first block (1: of the last)
    citation=SPEC.citation,
    description="ResNet-PointNet per-point (first-block) features concatenated with its global code (a points "
                "encoding).",
    profiles=SPEC.profiles,
)
