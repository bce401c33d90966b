"""Multi-task training of one encoding: L = L_rec + λ_cls·L_cls + λ_seg·L_seg, any subset of the tasks,
with parallel decoders or one joint decoder ("Towards Generalising Neural Implicit Representations").

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.specs import TASK_TARGETS, BenchVariant, ComponentSpec, Kind, ProtocolCaps

from ..reconstruction import SPEC as RECONSTRUCTION
from ..reconstruction import ReconstructionConfig
from ..segmentation import SegmentationConfig

TASKS = ("occupancy", "classification", "segmentation")


def task_variant(tasks: list[str], *overrides: str, field_name: str = "tasks", also: tuple[str, ...] = (),
                 inputs: tuple[str, ...] = ()) -> BenchVariant:
    """A bench variant setting ``protocol.<field_name>`` to ``tasks``; it runs on datasets with the targets of
    those tasks and of the tasks in ``also``."""
    targets = tuple(dict.fromkeys(TASK_TARGETS[task] for task in [*tasks, *also]))
    return BenchVariant((f"protocol.{field_name}=[{','.join(tasks)}]", *overrides), inputs=inputs, targets=targets)


@dataclass
class TaskHeadsConfig(ReconstructionConfig, SegmentationConfig):
    """Reconstruction's schedule and evaluation settings, plus how the tasks are weighted and decoded."""

    weights: dict[str, float] = field(default_factory=lambda: {"classification": 1.0, "segmentation": 1.0})  # λ
    decoders: str = "parallel"  # parallel: one decoder per task; joint: occupancy + parts from one decoder
    # the decoder plugin of each task (the joint decoder replaces occupancy + segmentation when decoders=joint)
    heads: dict[str, str] = field(default_factory=lambda: {
        "occupancy": "occupancy", "classification": "classifier", "segmentation": "segmentation",
        "joint": "joint"})


@dataclass
class MultitaskConfig(TaskHeadsConfig):
    tasks: list[str] = field(default_factory=lambda: list(TASKS))  # any non-empty subset of TASKS

    def describe(self) -> str:
        """How its leaderboard rows read: the task set and the decoder layout."""
        return f"{' + '.join(self.tasks)}, {self.decoders}"


SPEC = ComponentSpec(
    kind=Kind.PROTOCOL,
    name="multitask",
    factory="harness_plugins.protocols.multitask.protocol:MultitaskProtocol",
    config=MultitaskConfig,
    capabilities=ProtocolCaps(
        roles=("dataset", "encoder"),
        encodings=("global",),  # its heads (occupancy, classifier, segmentation, joint) decode global codes
        reference_tables=("generalising_t2", "generalising_t4", "generalising_t6", "generalising_t7"),
        reference_metrics={"IoU": "iou", "Chamfer-L1": "chamfer_l1", "accuracy": "top1", "mIoU": "miou"},
        primary_metric="iou",
        # the paper's rows: joint classification & ONet (points and images); segmentation & ONet with
        # parallel or joint decoders; all three tasks (points)
        bench=(task_variant(["occupancy", "classification"]),
               task_variant(["occupancy", "segmentation"], inputs=("points",)),
               task_variant(["occupancy", "segmentation"], "protocol.decoders=joint", inputs=("points",)),
               task_variant(["occupancy", "classification", "segmentation"], inputs=("points",))),
    ),
    version="1",
    citation='Hughes et al., "Towards Generalising Neural Implicit Representations", ECCV Workshops 2022',
    description="Weighted sum of reconstruction, classification and segmentation losses on one encoding; "
                "parallel or joint decoders; every task's metrics.",
    profiles={"smoke": dict(RECONSTRUCTION.profiles["smoke"]),
              "quick": dict(RECONSTRUCTION.profiles["quick"])},
)
