"""The contextualising module of Costain, Li and Prisacariu, "Contextualising Implicit Representations for
Semantic Tasks" (Section 3.2): a small network over FROZEN ``points`` encodings that adds l context features
per encoded point, so a semantic decoder trained on them recovers the semantics that reconstruction-only
encodings lose.

Unlike the other decoders it takes no query points: ``forward(encoding) -> encoding``. Given
(xyz [B, N, 3], features E_g [B, N, D]) it returns (xyz, E_g (+) f_ctx(E_g)) = (xyz, E_s [B, N, D + l]), the
input features unchanged (detached: the encoder stays frozen) followed by the l context features, and its
``encoding`` attribute is ``EncodingInfo("points", D + l)`` for building the semantic decoder on top (Eq. 2).

``kind="unet"`` (the paper's module): a shrunk Point Transformer U-Net (channels [32, 32, 64, 64, 128], one
block per stage, five scales) over the encoded points with the encoder's features as input, then a Linear to
l = 4. ``kind="mlp"``: the ablation baseline, a per-point MLP on the features (no neighbourhood context).
``scales`` keeps the first stages of the lists (3: the shallow ablation). Kept torch-free so that listing
components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.config_checks import require_non_negative, require_positive
from harness.specs import ComponentSpec, DecoderCaps, Kind

KINDS = ("unet", "mlp")


@dataclass
class ContextualiserConfig:
    """Defaults are the paper's module (Sec. 3.2, 4.2: ~379k parameters, l = 4)."""

    context_features: int = 4  # l, the context features per encoded point
    kind: str = "unet"  # "unet" (the paper's module) or "mlp" (the ablation baseline, no neighbourhood context)
    scales: int = 5  # U-Net stages used: the first ``scales`` entries of the lists below (3: shallow ablation)
    channels: list[int] = field(default_factory=lambda: [32, 32, 64, 64, 128])  # width per stage
    blocks: list[int] = field(default_factory=lambda: [1, 1, 1, 1, 1])  # attention blocks per encoder stage
    neighbours: list[int] = field(default_factory=lambda: [8, 16, 16, 16, 16])  # kNN size per stage
    strides: list[int] = field(default_factory=lambda: [1, 4, 4, 4, 4])  # FPS downsampling per stage
    share_planes: int = 8  # channels sharing one vector-attention weight
    decoder_blocks: int = 1  # attention blocks per decoder stage
    global_context: bool = True  # the Point Transformer's global-context transition at the coarsest level
    mlp_hidden: list[int] = field(default_factory=lambda: [32, 32, 64, 64, 128])  # ``kind="mlp"`` widths
    detach: bool = True  # stop gradients into the input encoding (the encoder is frozen)
    knn_chunk: int = 512  # queries per kNN chunk

    def __post_init__(self) -> None:
        require_positive(self, "context_features", "scales", "channels", "neighbours", "strides", "share_planes",
                         "mlp_hidden", "knn_chunk")
        require_non_negative(self, "blocks", "decoder_blocks")


SPEC = ComponentSpec(
    kind=Kind.DECODER,
    name="contextualiser",
    factory="harness_plugins.decoders.contextualiser.model:build",
    config=ContextualiserConfig,
    capabilities=DecoderCaps(consumes=("points",), task="context"),
    version="2",
    citation=('Costain, Li and Prisacariu, "Contextualising Implicit Representations for Semantic Tasks" '
              '(module: a shrunk Point Transformer, Zhao et al., ICCV 2021)'),
    description="Context module over frozen point encodings; forward(encoding) -> encoding (no query): a shrunk "
                "Point Transformer U-Net (or an MLP, ablation) adds l context features per point, "
                "concatenated to the frozen ones (dim D + l).",
    profiles={
        "smoke": {"channels": [8, 8, 16], "blocks": [1, 1, 1], "neighbours": [4, 4, 4], "strides": [1, 4, 4],
                  "scales": 3, "share_planes": 4, "mlp_hidden": [8]},
        "quick": {"channels": [16, 16, 32, 32, 64], "neighbours": [8, 16, 16, 16, 16]},
    },
)
