"""Per-point part segmentation head on a ``points`` encoding (the conventional PointNet-style baseline).

A query point takes the inverse-distance-weighted features of its nearest encoded points (itself, when
the queries are the input points, as in the conventional ShapeNetPart task), then a shared MLP gives
part logits. Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.config_checks import require_positive
from harness.specs import ComponentSpec, DecoderCaps, Kind


@dataclass
class PointSegmentationConfig:
    hidden: list[int] = field(default_factory=lambda: [256, 128])  # PointNet's segmentation MLP widths
    neighbours: int = 3  # encoded points interpolated per query

    def __post_init__(self) -> None:
        require_positive(self, "hidden", "neighbours")


SPEC = ComponentSpec(
    kind=Kind.DECODER,
    name="point_segmentation",
    factory="harness_plugins.decoders.point_segmentation.model:build",
    config=PointSegmentationConfig,
    capabilities=DecoderCaps(consumes=("points",), task="segmentation"),
    version="1",
    citation='Qi et al., "PointNet: Deep Learning on Point Sets for 3D Classification and Segmentation", CVPR 2017',
    description="Inverse-distance interpolation of per-point features at the queries, then an MLP to part logits.",
    profiles={"smoke": {"hidden": [16]}, "quick": {"hidden": [64, 32]}},
)
