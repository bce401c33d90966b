"""Unsigned distance field decoder for scenes: (query [B, M, 3], encoding) -> distances [B, M] >= 0.

- ``points`` encodings (xyz [B, N, 3], features [B, N, D]): RangeUDF's decoder as the contextualising paper
  uses it - the K = 4 nearest encoded points of each query, attentive interpolation of their features with
  the relative position encoding r = [|q - p|, q - p, q, p] (``harness_plugins.decoders.attentive``), then an
  MLP over [interpolated features, q] to one distance with a ReLU output.
- ``grid`` encodings (NDF / IF-Net feature volumes): NDF's decoder - the volumes sampled at the query and 6
  displaced copies (``harness_plugins.encoders.ndf.sampling.sample_features``), then 1x1 convolutions over the
  queries (512 -> 256 -> 256 -> 1, ReLU after each, so the output is non-negative).

Trained with ``harness.losses.udf_loss`` (L1 of both sides clamped at 0.1, summed over the queries, averaged
over the batch). Kept torch-free so that listing components stays fast; the networks live in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.config_checks import require_non_negative, require_positive
from harness.specs import ComponentSpec, DecoderCaps, Kind


@dataclass
class UDFConfig:
    """Attentive-interpolation sizes are not given by the contextualising paper (nor in RangeUDF's text
    available here): the defaults below are this implementation's choice; ``grid_hidden`` is NDF's decoder."""

    neighbours: int = 4  # K nearest encoded points per query (RangeUDF, K = 4)
    position_channels: int = 32  # width of the encoded relative position MLP(r); 0: features only
    attention_hidden: int = 32  # hidden width of the attention score MLP; 0: a single Linear to the score
    # the offsets q - p (and |q - p|) enter the position encoding divided by this length: about the spacing of the
    # encoded points in a unit-cube scene, so they are of the order of 1 like the coordinates beside them
    relative_scale: float = 0.01
    hidden: list[int] = field(default_factory=lambda: [128, 64])  # distance MLP widths (``points`` path)
    grid_hidden: list[int] = field(default_factory=lambda: [512, 256, 256])  # 1x1 conv widths (``grid`` path)
    # initial output (final layer: zero weights, this bias): the L1-best constant under the paper's query
    # sampling (half the queries within sigma 0.003 of the surface: median distance about 0.004)
    output_bias: float = 0.005
    # training passes the output ReLU's gradient below 0 too, so predictions pushed below 0 can come back
    # (False: the plain ReLU, whose predictions can all die at lr 1e-3; see model.non_negative)
    straight_through: bool = True
    knn_chunk: int = 512  # queries per kNN chunk (memory: at most chunk x N distances)

    def __post_init__(self) -> None:
        require_positive(self, "neighbours", "relative_scale", "hidden", "grid_hidden", "knn_chunk")
        require_non_negative(self, "position_channels", "attention_hidden")


SPEC = ComponentSpec(
    kind=Kind.DECODER,
    name="udf",
    factory="harness_plugins.decoders.udf.model:build",
    config=UDFConfig,
    capabilities=DecoderCaps(consumes=("points", "grid"), task="udf"),
    version="3",
    citation=('Wang et al., "RangeUDF: Semantic Surface Reconstruction from 3D Point Clouds", arXiv 2204.09138 '
              '(points); Chibane, Mir and Pons-Moll, "Neural Unsigned Distance Fields for Implicit Function '
              'Learning", NeurIPS 2020 (grid); as used by Costain, Li and Prisacariu, "Contextualising Implicit '
              'Representations for Semantic Tasks"'),
    description="Unsigned distance per query: attentive interpolation of the K=4 nearest encoded points' features "
                "(relative position encoding) + MLP, or NDF's 1x1 convolutions over sampled grid features; "
                "ReLU output.",
    profiles={
        "smoke": {"position_channels": 8, "attention_hidden": 8, "hidden": [16], "grid_hidden": [16, 16]},
        "quick": {"position_channels": 16, "attention_hidden": 16, "hidden": [64, 32], "grid_hidden": [64, 32, 32]},
    },
)
