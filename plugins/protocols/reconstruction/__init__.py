"""Occupancy reconstruction (Occupancy Networks): train encoder + occupancy decoder, evaluate meshes.

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.specs import ComponentSpec, Kind, ProtocolCaps
from harness.training_config import SMOKE_SCHEDULE, TrainingConfig


@dataclass
class ReconstructionConfig(TrainingConfig):
    """Defaults follow the Occupancy Networks point-cloud completion setup (the ``paper`` profile)."""

    iou_threshold: float = 0.5  # occupancy probability binarised for volumetric IoU
    threshold: float = 0.2  # occupancy probability of the extracted surface
    resolution0: int = 32  # MISE start resolution
    upsampling_steps: int = 2  # MISE refinements (32 -> 128)
    fscore_threshold: float = 0.01
    eval_points: int = 100_000  # points sampled on each extracted mesh for Chamfer, normals, F-score
    meshes_saved: int = 4  # test meshes written to the run folder
    max_eval_shapes: int = 0  # 0 = every test shape


SPEC = ComponentSpec(
    kind=Kind.PROTOCOL,
    name="reconstruction",
    factory="harness_plugins.protocols.reconstruction.protocol:ReconstructionProtocol",
    config=ReconstructionConfig,
    capabilities=ProtocolCaps(
        roles=("dataset", "encoder", "decoder"),
        tasks=("occupancy",),
        reference_tables=("generalising_t2", "generalising_t3", "generalising_t4", "generalising_t5",
                          "generalising_t6"),
        reference_metrics={"IoU": "iou", "Chamfer-L1": "chamfer_l1"},
        primary_metric="iou",
        floor_label="mean training shape, or constant occupancy where better",
    ),
    version="1",
    citation=('Mescheder et al., "Occupancy Networks: Learning 3D Reconstruction in Function Space", CVPR 2019'),
    description="BCE on query occupancies; model selection on validation IoU; test IoU, Chamfer-L1/L2, "
                "normal consistency, F-score on MISE meshes.",
    profiles={
        "smoke": {**SMOKE_SCHEDULE,
                  "resolution0": 8, "upsampling_steps": 1, "eval_points": 2_000, "meshes_saved": 1,
                  "max_eval_shapes": 4},
        # 13 test shapes per class are scored (MISE is the expensive part), 104 in all
        "quick": {"steps": 800, "batch_size": 16, "lr": 3e-3, "schedule": "cosine", "warmup_steps": 50,
                  "validate_every": 200, "checkpoint_every": 200, "max_eval_shapes": 104,
                  "resolution0": 16, "upsampling_steps": 2, "eval_points": 20_000, "meshes_saved": 4},
    },
)
