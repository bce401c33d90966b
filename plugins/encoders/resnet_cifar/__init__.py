"""The CIFAR ResNets of He et al. (ResNet-20, -32, ... : depth 6n+2) as an image encoder: an image [B, C, H, W]
to its globally pooled 64-d feature; the classification head is the ``classifier`` decoder (``hidden=0``: the
paper's single linear layer).

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import require_positive
from harness.specs import ComponentSpec, EncoderCaps, Kind


@dataclass
class ResNetCifarConfig:
    """Defaults are the paper's ResNet-20 (CIFAR-10, Section 4.2)."""

    depth: int = 20  # 6n + 2 weighted layers with n basic blocks per stage: 20 (n=3), 32 (n=5), 44, 56, 110, ...
    base_width: int = 16  # channels of the stem and stage 1; stages 2 and 3 have twice and four times as many
    # standardise each image per channel before the stem (see plugins/encoders/standardise.py); the paper
    # subtracts the per-pixel mean of the training set instead
    standardise: bool = False

    def __post_init__(self) -> None:
        require_positive(self, "depth", "base_width")


SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="resnet_cifar",
    factory="harness_plugins.encoders.resnet_cifar.model:build",
    config=ResNetCifarConfig,
    capabilities=EncoderCaps(consumes="image", produces="global",
                             # benched on the synthetic stand-in for its paper's data, with the paper's
                             # single linear head
                             bench_datasets=("synthetic_images",), bench_heads={"classifier": ("decoder.hidden=0",)}),
    version="1",
    citation='He et al., "Deep Residual Learning for Image Recognition", CVPR 2016 (Section 4.2, CIFAR-10)',
    description="CIFAR ResNet of depth 6n+2 (3x3 stem, three stages of n basic blocks with 16/32/64 channels, "
                "option-A zero-padding shortcuts, global average pool) to a 64-d feature.",
    profiles={
        "smoke": {"depth": 20, "base_width": 4},  # the depth the bench's per-layer bit schedules are written for
        "quick": {"depth": 20, "standardise": True},
    },
)
