"""ResNet-18 image encoder of Occupancy Networks' single-view reconstruction: an image [B, 3, H, W] to a code [B, c].

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import require_positive
from harness.specs import ComponentSpec, EncoderCaps, Kind


@dataclass
class ResNet18ImageConfig:
    """Defaults are the paper's sizes (ONet single-image reconstruction: ResNet-18, code 256)."""

    code_size: int = 256  # size c of the global code (the linear head maps 8 * base_width -> c)
    base_width: int = 64  # channels of the stem; the four stages have 1, 2, 4, 8 times as many (64: ResNet-18)
    # a local backbone state dict (see model.ResNet18Backbone for its key names), e.g. ImageNet weights;
    # empty: trained from scratch (nothing can be downloaded)
    weights: str = ""

    def __post_init__(self) -> None:
        require_positive(self, "code_size", "base_width")


SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="resnet18_image",
    factory="harness_plugins.encoders.resnet18_image.model:build",
    config=ResNet18ImageConfig,
    # benched on the rendered views of the shapes it reconstructs (ONet's single-view setting)
    capabilities=EncoderCaps(consumes="image", produces="global", bench_datasets=("synthetic_shapes",)),
    version="1",
    citation=('Mescheder et al., "Occupancy Networks: Learning 3D Reconstruction in Function Space", CVPR 2019; '
              'He et al., "Deep Residual Learning for Image Recognition", CVPR 2016'),
    description="ResNet-18 (four stages of two basic blocks, global average pool) and a linear head, to a global "
                "code; ImageNet normalisation inside, trained from scratch unless local weights are given.",
    profiles={
        "smoke": {"base_width": 8, "code_size": 16},
        "quick": {"base_width": 16, "code_size": 128},
    },
)
