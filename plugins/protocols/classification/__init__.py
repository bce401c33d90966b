"""Shape classification from an encoding: encoder + classifier head trained with cross-entropy.

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.specs import ComponentSpec, Kind, ProtocolCaps
from harness.training_config import SMOKE_SCHEDULE, TrainingConfig


@dataclass
class ClassificationConfig(TrainingConfig):
    """The paper's schedule: Adam, lr 1e-4; model selection on validation top-1 accuracy."""


SPEC = ComponentSpec(
    kind=Kind.PROTOCOL,
    name="classification",
    factory="harness_plugins.protocols.classification.protocol:ClassificationProtocol",
    config=ClassificationConfig,
    capabilities=ProtocolCaps(
        roles=("dataset", "encoder", "decoder"),
        tasks=("classification",),
        reference_tables=("generalising_t1a", "generalising_t2", "generalising_t3", "generalising_t4",
                          "generalising_t5", "generalising_t6"),
        reference_metrics={"accuracy": "top1"},
        primary_metric="top1",
        floor_label="majority training class",
    ),
    version="1",
    citation='Hughes et al., "Towards Generalising Neural Implicit Representations", ECCV Workshops 2022',
    description="Cross-entropy on class labels; selection on validation top-1; test top-1 overall and per class.",
    profiles={
        "smoke": SMOKE_SCHEDULE,
        # at least 300 steps or 8 passes over the training split (synthetic_images: 744 steps, synthetic_videos:
        # 496), warm-up and cosine decay (measured on PointNet, synthetic_shapes: 100 steps 0.82, 200 steps 0.89,
        # 300 steps 0.965 / 0.94 on seeds 0 / 1)
        "quick": {"steps": 300, "epochs": 8, "batch_size": 32, "lr": 3e-3, "schedule": "cosine", "warmup_steps": 30,
                  "validate_every": 50, "checkpoint_every": 100},
    },
)
