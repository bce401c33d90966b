"""Multi-task training of one encoding: L = L_rec + λ_cls·L_cls + λ_seg·L_seg, any subset of the tasks,
with parallel decoders or one joint decoder ("Towards Generalising Neural Implicit Representations").

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.claims import ABOVE, Claim, RowSelector
from harness.specs import TASK_TARGETS, BenchVariant, ComponentSpec, Kind, ProtocolCaps

from .._task_floors import TASK_FLOOR_LABEL
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


def shapes_row(protocol: str, metric: str, encoder: str = "pointnet", decoder: str | None = None,
               **settings: Any) -> RowSelector:
    """A row of the paper's tables as the bench measures it: ``protocol`` with ``encoder`` (and ``decoder``) on the
    synthetic shapes, with the protocol settings given by field name (``tasks=[...]``, ``pretrain_tasks=[...]``)."""
    config = {"encoder.name": encoder, **{f"protocol.{name}": value for name, value in settings.items()}}
    if decoder is not None:
        config["decoder.name"] = decoder
    return RowSelector(protocol, metric, config, dataset="synthetic_shapes")


# Tables 2-6 put every jointly trained score within 0.03 of the single-task one (IoU 0.77 vs 0.78, 0.70 vs 0.73,
# 0.68-0.72 vs 0.69; accuracy and mIoU equal or 0.03 apart): "about as well" is that band
AS_WELL = (-0.03, 0.03)
CLASSIFICATION_AND_ONET = {"tasks": ["occupancy", "classification"]}
SEGMENTATION_AND_ONET = {"tasks": ["occupancy", "segmentation"], "decoders": "parallel"}
ONET_ENCODER = {"pretrain_tasks": ["occupancy"]}


def beats_frozen_onet_encoder(claim_id: str, statement: str, source: str, task: str, metric: str,
                              joint: dict[str, Any], published: tuple[float, float]) -> Claim:
    """``task`` trained jointly with ONet (multitask settings ``joint``) beats its head on the frozen ONet encoder."""
    return Claim(claim_id, statement, source, shapes_row("multitask", metric, **joint), ABOVE,
                 shapes_row("holdout", metric, **ONET_ENCODER, task=task), *published)


def as_well_as_alone(claim_id: str, statement: str, source: str, metric: str, joint: dict[str, Any],
                     protocol: str, decoder: str, published: tuple[float, float]) -> Claim:
    """The jointly trained ``metric`` is about that of ``protocol`` trained alone with ``decoder``."""
    return Claim(claim_id, statement, source, shapes_row("multitask", metric, **joint), AS_WELL,
                 shapes_row(protocol, metric, decoder=decoder), *published)


CLAIMS = (
    beats_frozen_onet_encoder("joint-classification-beats-frozen-onet-encoder", "classification trained jointly "
                              "with ONet beats a classifier on the frozen ONet encoder", "generalising2022 Table 2",
                              "classification", "top1", CLASSIFICATION_AND_ONET, (0.92, 0.80)),
    beats_frozen_onet_encoder("joint-segmentation-beats-frozen-onet-encoder", "segmentation trained with ONet "
                              "(parallel decoders) beats a segmentation head on the frozen ONet encoder",
                              "generalising2022 Tables 6 and 8", "segmentation", "miou", SEGMENTATION_AND_ONET,
                              (0.53, 0.48)),
    as_well_as_alone("joint-classification-reconstructs-like-onet", "adding classification to ONet's training keeps "
                     "its reconstruction IoU", "generalising2022 Table 2", "iou", CLASSIFICATION_AND_ONET,
                     "reconstruction", "occupancy", (0.77, 0.78)),
    as_well_as_alone("joint-segmentation-reconstructs-like-onet", "adding segmentation (parallel decoders) to ONet's "
                     "training keeps its reconstruction IoU", "generalising2022 Table 6", "iou", SEGMENTATION_AND_ONET,
                     "reconstruction", "occupancy", (0.68, 0.69)),
    as_well_as_alone("joint-classification-classifies-like-classification-alone", "classification trained jointly "
                     "with ONet is as accurate as classification alone", "generalising2022 Table 2", "top1",
                     CLASSIFICATION_AND_ONET, "classification", "classifier", (0.92, 0.92)),
    as_well_as_alone("joint-segmentation-segments-like-segmentation-alone", "segmentation trained with ONet (parallel "
                     "decoders) is as good as segmentation alone", "generalising2022 Table 6", "miou",
                     SEGMENTATION_AND_ONET, "segmentation", "segmentation", (0.53, 0.53)),
)


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
        floor_label=TASK_FLOOR_LABEL,
        # the paper's point cloud rows its claims compare: joint classification & ONet; segmentation & ONet with
        # parallel or joint decoders (the image encoder is benched by the single-task protocols; fewer, longer-
        # trained rows fit the bench's minutes better than every combination of tasks and inputs)
        bench=(task_variant(["occupancy", "classification"], inputs=("points",)),
               task_variant(["occupancy", "segmentation"], inputs=("points",)),
               task_variant(["occupancy", "segmentation"], "protocol.decoders=joint", inputs=("points",))),
        claims=CLAIMS,
    ),
    version="1",
    citation='Hughes et al., "Towards Generalising Neural Implicit Representations", ECCV Workshops 2022',
    description="Weighted sum of reconstruction, classification and segmentation losses on one encoding; "
                "parallel or joint decoders; every task's metrics.",
    profiles={"smoke": dict(RECONSTRUCTION.profiles["smoke"]),
              "quick": dict(RECONSTRUCTION.profiles["quick"])},
)
