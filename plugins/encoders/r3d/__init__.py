"""R3D-18, the 3D ResNet-18 of Tran et al. for video clips, as an encoder: a clip [B, C, T, H, W] to its globally
(spatiotemporally) pooled 512-d feature; the classification head is the ``classifier`` decoder (``hidden=0``: the
paper's single linear layer).

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import require_positive
from harness.specs import ComponentSpec, EncoderCaps, Kind


@dataclass
class R3DConfig:
    """Defaults are the paper's R3D-18."""

    base_width: int = 64  # channels of the stem and stage 1; stages 2-4 have 2, 4 and 8 times as many
    # standardise each clip per channel before the stem (see plugins/encoders/standardise.py); the paper normalises
    # with the dataset's mean and standard deviation instead
    standardise: bool = False

    def __post_init__(self) -> None:
        require_positive(self, "base_width")


SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="r3d",
    factory="harness_plugins.encoders.r3d.model:build",
    config=R3DConfig,
    capabilities=EncoderCaps(consumes="video", produces="global",
                             # benched on the synthetic stand-in for its paper's data, with the paper's
                             # single linear head
                             bench_datasets=("synthetic_videos",), bench_heads={"classifier": ("decoder.hidden=0",)}),
    version="1",
    citation='Tran et al., "A Closer Look at Spatiotemporal Convolutions for Action Recognition", CVPR 2018',
    description="R3D-18 (3x7x7 stem with stride (1,2,2), four stages of two 3x3x3 basic blocks with 64/128/256/512 "
                "channels, stride 2 in stages 2-4, global average pool) to an 8*base_width feature.",
    profiles={
        "smoke": {"base_width": 8},
        "quick": {"base_width": 16, "standardise": True},
    },
)
