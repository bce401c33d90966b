"""Semantic segmentation decoder for scenes: (query [B, M, 3], (xyz [B, N, 3], features [B, N, D])) -> class
logits [B, M, C], C = the dataset's ``semantic_classes``.

The same attentive interpolation as the ``udf`` decoder (one implementation,
``harness_plugins.decoders.attentive``: the K = 4 nearest encoded points, relative position encoding
r = [|q - p|, q - p, q, p], softmax attention over the K), then an MLP over [interpolated features, q] to C
logits. Trained with ``harness.losses.semantic_loss`` (cross-entropy, label -1 ignored). On a contextualised
encoding (the ``contextualiser`` decoder's output) it is built on that module's ``encoding`` (D + l).

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.config_checks import require_non_negative, require_positive
from harness.specs import ComponentSpec, DecoderCaps, Kind


@dataclass
class SemanticConfig:
    """Sizes are not given by the contextualising paper (nor in RangeUDF's text available here): this
    implementation's choice, the same attentive interpolation sizes as ``udf``."""

    neighbours: int = 4  # K nearest encoded points per query
    position_channels: int = 32  # width of the encoded relative position MLP(r); 0: features only
    attention_hidden: int = 32  # hidden width of the attention score MLP; 0: a single Linear to the score
    # the offsets q - p (and |q - p|) enter the position encoding divided by this length: about the spacing of the
    # encoded points in a unit-cube scene, so they are of the order of 1 like the coordinates beside them
    relative_scale: float = 0.01
    hidden: list[int] = field(default_factory=lambda: [128, 64])  # logit MLP widths
    knn_chunk: int = 512  # queries per kNN chunk

    def __post_init__(self) -> None:
        require_positive(self, "neighbours", "relative_scale", "hidden", "knn_chunk")
        require_non_negative(self, "position_channels", "attention_hidden")


SPEC = ComponentSpec(
    kind=Kind.DECODER,
    name="semantic",
    factory="harness_plugins.decoders.semantic.model:build",
    config=SemanticConfig,
    capabilities=DecoderCaps(consumes=("points",), task="semantic"),
    version="2",
    citation=('Wang et al., "RangeUDF: Semantic Surface Reconstruction from 3D Point Clouds", arXiv 2204.09138; '
              'as used by Costain, Li and Prisacariu, "Contextualising Implicit Representations for Semantic '
              'Tasks"'),
    description="Semantic logits per query: attentive interpolation of the K=4 nearest encoded points' features "
                "(relative position encoding) + MLP to the dataset's semantic classes.",
    profiles={
        "smoke": {"position_channels": 8, "attention_hidden": 8, "hidden": [16]},
        "quick": {"position_channels": 16, "attention_hidden": 16, "hidden": [64, 32]},
    },
)
