"""Contextualise: the rows of Table 1 of Costain, Li and Prisacariu, "Contextualising Implicit Representations
for Semantic Tasks" (and the thesis version's "Unfrozen Encoder" row), one row per run, selected by
``protocol.row``:

- ``baseline``: encoder + UDF decoder + semantic decoder trained jointly, the two losses balanced by learned
  uncertainty weighting (Kendall et al.; RangeUDF's joint training);
- ``geometric``: encoder + UDF decoder trained for reconstruction only (stage 1; no semantic metrics);
- ``frozen``: stage 1's encoder frozen, a semantic decoder trained on its encodings;
- ``unfrozen``: stage 1's encoder NOT frozen, trained with a semantic decoder on the semantic loss alone; the
  reconstruction is then evaluated with stage 1's UDF decoder on the changed encoder (it degrades);
- ``context``: stage 1's encoder frozen, the contextualising module + a semantic decoder trained on its
  encodings (Eq. 2: the semantic decoder reads E_g (+) f_ctx(E_g)). Ablations change the module through
  ``protocol.context`` (overrides of the ``contextualiser`` decoder's config: ``kind=mlp``, ``scales=3``, more
  ``blocks``/``channels``, ``context_features`` l in {1, 2, 4}).

Stage 1 (geometric only) and the baseline are trained once per recipe (:mod:`harness.trained`) and shared by
every row, ablation and ``cross_dataset`` run that needs them. The heads are built by name
(``protocol.heads``), so the run needs only a dataset and a ``points`` encoder.

Evaluation (Sec. 4.1.2): per test scene the surface is extracted from the UDF by gradient-direction marching
cubes (``protocol.resolution`` cells per side of the unit cube), ``eval_points`` points are sampled on it and
scored against the scene's ground-truth surface points: ``cd_l1``, ``cd_l2`` (raw unit-cube values; the paper
prints them x10^-2 and x10^-4, see the published rows' scale note), ``f1_delta``, ``f1_2delta``; the semantic
decoder labels the sampled points: ``miou``, ``mf1_delta``, ``mf1_2delta`` and the IoU per class (``miou`` with
the class name). Scene figures are averaged over the test scenes.

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.claims import ABOVE, BELOW, Claim, RowSelector
from harness.specs import BenchVariant, ComponentSpec, Kind, ProtocolCaps
from harness.training_config import TrainingConfig

TSNE_FILE = "tsne.npz"  # a context row's saved features and t-SNE embeddings, in its run folder
# Table 1's rows: Baseline, Geometric Only, Frozen Encoder, (the thesis') Unfrozen Encoder, Context Features
ROWS = ("baseline", "geometric", "frozen", "unfrozen", "context")


@dataclass
class SceneStagesConfig(TrainingConfig):
    """The schedule every stage trains with (the paper: Adam, lr 1e-3, batch 12, 500 epochs of ScanNet's 1201
    scans, i.e. about 50k steps), the heads, and the evaluation."""

    steps: int = 50_000
    batch_size: int = 12
    lr: float = 1e-3
    validate_every: int = 5_000
    # the decoder plugin of each head
    heads: dict[str, str] = field(default_factory=lambda: {"udf": "udf", "semantic": "semantic",
                                                            "context": "contextualiser"})
    # overrides of the contextualising module's config (its profile applies first): the ablations, e.g.
    # +protocol.context.kind=mlp, +protocol.context.scales=3, +protocol.context.context_features=2 (the "+" adds a
    # key to this dict under Hydra's struct mode)
    context: dict[str, Any] = field(default_factory=dict)
    # overrides of the udf and semantic decoders' configs (after their profiles), e.g. +protocol.udf.straight_through=false
    udf: dict[str, Any] = field(default_factory=dict)
    semantic: dict[str, Any] = field(default_factory=dict)
    # the semantic loss's class weights: "none" (the paper's plain cross-entropy) or "inverse_log" (1 / ln(1.2 + f_c)
    # of each class's frequency f_c among the training queries, PointNet++'s ScanNet weighting): walls and floors
    # are two thirds of the synthetic rooms' queries, the furniture classes 0.2-6% each
    class_weights: str = "none"
    resolution: int = 256  # UDF surface extraction grid: cells per side of the unit cube
    eval_points: int = 100_000  # points sampled on each extracted surface
    delta: float = 0.005  # F1-δ threshold (unit-cube units)
    max_eval_scenes: int = 0  # 0: every test scene
    meshes_saved: int = 4  # extracted test meshes written to the run folder
    eval_chunk: int = 65_536  # query points per decoder call during evaluation
    # t-SNE of frozen vs contextualised features (context rows): encoded points sampled from the first test
    # scene (0: none), the perplexity and the optimisation's iterations (fixed seed: deterministic)
    tsne_points: int = 2_000
    tsne_perplexity: float = 30.0
    tsne_iterations: int = 1_000


@dataclass
class ContextualiseConfig(SceneStagesConfig):
    row: str = "context"  # one of ROWS

    def describe(self) -> str:
        """How its leaderboard rows read: the row, and the contextualiser's overrides where it has one."""
        if self.row == "context" and self.context:
            return f"context: {overrides_text(self.context)}"
        return self.row


def overrides_text(overrides: dict[str, Any]) -> str:
    """Config overrides as a method label shows them: ``k=v, ...`` by key, lists as ``[a,b]``."""
    def compact(value: Any) -> str:
        return "[" + ",".join(map(str, value)) + "]" if isinstance(value, (list, tuple)) else str(value)

    return ", ".join(f"{key}={compact(value)}" for key, value in sorted(overrides.items()))


def table_row(row: str, metric: str, **context: Any) -> RowSelector:
    """A row of Table 1 (``context`` overrides: Table 3's ablations) with the paper's encoder, on any dataset."""
    return RowSelector("contextualise", metric, {"encoder.name": "point_transformer", "protocol.row": row,
                                                 "protocol.context": context})


# Table 1a (ScanNet) and its thesis version; CD-L1 is printed x10^-2 there, written here in the measured units
CLAIMS = (
    Claim("context-features-recover-frozen-miou",
          "the contextualising module recovers the mIoU semantics lose on frozen geometric encodings",
          "contextualising2023 Table 1a", table_row("context", "miou"), ABOVE, table_row("frozen", "miou"),
          published_a=0.694, published_b=0.296),
    Claim("frozen-encoder-loses-miou-to-joint-baseline",
          "semantics on frozen geometric-only encodings lose mIoU against the jointly trained baseline",
          "contextualising2023 Table 1a", table_row("frozen", "miou"), BELOW, table_row("baseline", "miou"),
          published_a=0.296, published_b=0.536),
    Claim("unfreezing-the-encoder-degrades-reconstruction",
          "training the encoder for semantics (unfrozen) worsens the reconstruction its UDF decoder gives",
          "thesis-ch6 Table 1a", table_row("unfrozen", "cd_l1"), ABOVE, table_row("geometric", "cd_l1"),
          published_a=0.00768, published_b=0.00302),
    # the paper's Table 3 heads these columns F1-δ, the thesis' mF1-δ: semantic F1 (see the reference NOTES.md)
    Claim("unet-context-module-beats-mlp", "the U-Net contextualising module beats an MLP in its place",
          "thesis-ch6 Table 3 (2D-3D-S)", table_row("context", "mf1_delta"), ABOVE,
          table_row("context", "mf1_delta", kind="mlp"), published_a=0.664, published_b=0.490),
)

# quick: the paper's lr, five epochs of the 48 training rooms at batch 2; every test room scored
QUICK: dict[str, Any] = {"steps": 120, "batch_size": 2, "lr": 1e-3, "validate_every": 40, "checkpoint_every": 40,
                         "resolution": 48, "eval_points": 20_000,
                         "max_eval_scenes": 0, "meshes_saved": 1, "tsne_points": 800, "tsne_perplexity": 30.0,
                         "tsne_iterations": 500}
SMOKE: dict[str, Any] = {"steps": 4, "batch_size": 2, "lr": 1e-3, "validate_every": 2, "checkpoint_every": 2,
                         "resolution": 16, "eval_points": 2_000, "max_eval_scenes": 1,
                         "meshes_saved": 1, "tsne_points": 120, "tsne_perplexity": 10.0, "tsne_iterations": 250}

SPEC = ComponentSpec(
    kind=Kind.PROTOCOL,
    name="contextualise",
    factory="harness_plugins.protocols.contextualise.protocol:ContextualiseProtocol",
    config=ContextualiseConfig,
    capabilities=ProtocolCaps(
        roles=("dataset", "encoder"),
        # the semantic heads and the contextualiser read point encodings; the geometric row (a UDF decoder alone)
        # takes grid encodings too (NDF), the other rows check for points when they run
        encodings=("points", "grid"),
        reference_tables=("contextualising_t1a", "contextualising_t1b", "contextualising_t1c",
                          "thesis_ch6_t1a", "thesis_ch6_t1b", "thesis_ch6_t1c"),
        reference_metrics={"CD-L1": "cd_l1", "CD-L2": "cd_l2", "F1-delta": "f1_delta", "F1-2delta": "f1_2delta",
                           "mF1-delta": "mf1_delta", "mF1-2delta": "mf1_2delta", "mIoU": "miou"},
        primary_metric="miou",
        floor_label="majority training class on the true surface (miou, mf1); median training UDF (udf_l1; no "
                    "surface: F1 0)",
        # the five rows of Table 1 (thesis version) with the paper's encoder, on the synthetic rooms
        # and Table 3's MLP context module (the cheapest ablation); 2048 encoder input points and training queries
        # per room instead of the quick profile's 4096: the encoder's cost is linear in them, and six stages have
        # to fit in the bench's minutes
        bench=tuple(BenchVariant((*row, "dataset.input_points=2048", "dataset.query_points=2048"),
                                 targets=("udf", "semantic"), datasets=("synthetic_rooms",),
                                 encoders=("point_transformer",))
                    for row in [(f"protocol.row={row}",) for row in ROWS]
                    + [("protocol.row=context", "+protocol.context.kind=mlp")])
        # NDF's grid encoder in the UDF reconstruction of the same rooms (the geometric row)
        + (BenchVariant(("protocol.row=geometric", "dataset.input_points=2048", "dataset.query_points=2048"),
                        targets=("udf",), datasets=("synthetic_rooms",), encoders=("ndf",)),),
        figures="harness_plugins.protocols.contextualise.figures:tsne_figures",
        claims=CLAIMS,
    ),
    version="1",
    citation=('Costain, Li and Prisacariu, "Contextualising Implicit Representations for Semantic Tasks", 2023 '
              '(Table 1; thesis ch. 6 for the unfrozen row)'),
    description="Table 1's rows, one per run (protocol.row): joint baseline, geometric only, frozen encoder, "
                "unfrozen encoder, context features; UDF surface extraction, CD-L1/L2, F1-δ/2δ, mIoU, mF1-δ.",
    profiles={"smoke": SMOKE, "quick": QUICK},
)
