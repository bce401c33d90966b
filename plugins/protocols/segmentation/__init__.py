"""Part segmentation at query points (the implicit formulation; with query = input points, the
conventional per-point task).

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.specs import BenchVariant, ComponentSpec, Kind, ProtocolCaps
from harness.training_config import SMOKE_SCHEDULE, TrainingConfig


@dataclass
class SegmentationConfig(TrainingConfig):
    """The paper's schedule; model selection on validation instance mIoU."""

    category_parts_only: bool = True  # predict among the shape's category parts (ShapeNetPart convention)
    # the conventional task: segment the encoder's input points (labels ``points_part``) instead of the
    # implicit formulation's query points (labels ``part``, Voronoi inside the shape)
    points_as_queries: bool = False


SPEC = ComponentSpec(
    kind=Kind.PROTOCOL,
    name="segmentation",
    factory="harness_plugins.protocols.segmentation.protocol:SegmentationProtocol",
    config=SegmentationConfig,
    capabilities=ProtocolCaps(
        roles=("dataset", "encoder", "decoder"),
        tasks=("segmentation",),
        reference_tables=("generalising_t1b", "generalising_t6", "generalising_t7", "generalising_t8"),
        reference_metrics={"mIoU": "miou"},
        primary_metric="miou",
        floor_label="majority training part per category",
        bench=(BenchVariant(inputs=("points",)),),  # the paper segments from point clouds only
    ),
    version="1",
    citation='Hughes et al., "Towards Generalising Neural Implicit Representations", ECCV Workshops 2022',
    description="Cross-entropy on labelled query points (Voronoi labels inside the shape, outside ignored); "
                "per-shape part mIoU, a part absent from prediction and truth counting 1.",
    profiles={
        "smoke": SMOKE_SCHEDULE,
        "quick": {"steps": 500, "batch_size": 16, "lr": 3e-3, "schedule": "cosine", "warmup_steps": 50,
                  "validate_every": 200, "checkpoint_every": 200},
    },
)
