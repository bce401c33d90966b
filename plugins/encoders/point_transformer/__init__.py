"""Point Transformer (v1) segmentation U-Net as a point encoder: a cloud [B, N, 3] to a ``points`` encoding
(xyz [B, N, 3], features [B, N, channels[0]]).

The network class, ``model.PointTransformerUNet``, takes any number of stages, widths, blocks, neighbourhoods
and input feature width, so other components (the contextualiser) build shrunk versions of it. Kept torch-free
so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.config_checks import require_non_negative, require_positive
from harness.specs import ComponentSpec, EncoderCaps, Kind


@dataclass
class PointTransformerConfig:
    """Defaults are the paper's sizes (Zhao et al. 2021, the segmentation network; ~7.8M parameters)."""

    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 512])  # width per stage
    blocks: list[int] = field(default_factory=lambda: [1, 2, 3, 5, 2])  # attention blocks per encoder stage
    neighbours: list[int] = field(default_factory=lambda: [8, 16, 16, 16, 16])  # k of each stage's kNN
    strides: list[int] = field(default_factory=lambda: [1, 4, 4, 4, 4])  # downsampling (FPS) per stage
    share_planes: int = 8  # channels sharing one vector-attention weight
    decoder_blocks: int = 1  # attention blocks per decoder stage
    global_context: bool = True  # global-context transition at the coarsest decoder level
    dense_knn: bool = False  # all-pairs kNN (full N x N distance matrix): for benchmarking only
    knn_tree: bool = True  # kNN of CPU tensors by KD-tree (pykdtree); False: the chunked torch search everywhere
    knn_chunk: int = 256  # queries per kNN chunk (memory: at most chunk x N distances)
    knn_block: int = 32  # points per block of the kNN's spatial pruning; <= 0: no pruning

    def __post_init__(self) -> None:
        require_positive(self, "channels", "neighbours", "strides", "share_planes", "knn_chunk")
        require_non_negative(self, "blocks", "decoder_blocks")


SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="point_transformer",
    factory="harness_plugins.encoders.point_transformer.model:build",
    config=PointTransformerConfig,
    capabilities=EncoderCaps(consumes="points", produces="points", bench_datasets=("synthetic_rooms",)),
    version="2",
    citation='Zhao, Jiang, Jia, Torr and Koltun, "Point Transformer", ICCV 2021',
    description="Point Transformer U-Net: vector self-attention over kNN neighbourhoods, FPS + kNN max-pool "
                "transition down, 3-NN interpolation transition up with skips; per-point features.",
    profiles={
        "smoke": {"channels": [8, 16, 16], "blocks": [1, 1, 1], "neighbours": [4, 4, 4], "strides": [1, 4, 4],
                  "share_planes": 4},
        "quick": {"channels": [16, 32, 64, 128], "blocks": [1, 1, 1, 1], "neighbours": [8, 16, 16, 16],
                  "strides": [1, 4, 4, 4]},
    },
)
