"""Conditional-batch-norm occupancy decoder of Occupancy Networks: (query [B, M, 3], code [B, D]) -> logits [B, M].

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import require_non_negative, require_positive
from harness.specs import ComponentSpec, DecoderCaps, Kind


@dataclass
class OccupancyConfig:
    """Defaults are the paper's sizes (DecoderCBatchNorm: hidden 256, five blocks)."""

    hidden: int = 256  # width of the 1x1-conv point features
    blocks: int = 5  # conditional residual blocks

    def __post_init__(self) -> None:
        require_positive(self, "hidden")
        require_non_negative(self, "blocks")


SPEC = ComponentSpec(
    kind=Kind.DECODER,
    name="occupancy",
    factory="harness_plugins.decoders.occupancy.model:build",
    config=OccupancyConfig,
    capabilities=DecoderCaps(consumes=("global",), task="occupancy"),
    version="1",
    citation=('Mescheder et al., "Occupancy Networks: Learning 3D Reconstruction in Function Space", '
              "CVPR 2019"),
    description="Occupancy decoder: residual point-wise blocks with batch norm conditioned on a global code.",
    profiles={
        "smoke": {"hidden": 16, "blocks": 1},
        "quick": {"hidden": 32, "blocks": 5},
    },
)
