"""Hold-out: does an encoding trained for task set A serve a task B it never trained with?

Stage 1 trains the encoder with the tasks A (e.g. reconstruction alone: the "ONet encoder"); stage 2
freezes it and trains a fresh head for task B ("Towards Generalising Neural Implicit Representations",
Tables 2, 4, 8: "Classification w/ ONet encoder", "Multi Task w/ Seg & ONet encoder"...). The same
task B trained jointly is the ``multitask`` protocol with A + B. A run reports B's test metrics and stage 1's
validation score; stage 1's test metrics are on the page of the run that trained those weights (the multitask
run with A, or for ONet alone the reconstruction run).

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.claims import ABOVE, Claim
from harness.specs import BenchVariant, ComponentSpec, Kind, ProtocolCaps

from .._task_floors import TASK_FLOOR_LABEL
from ..multitask import ONET_ENCODER, TaskHeadsConfig, shapes_row, task_variant
from ..multitask import SPEC as MULTITASK


def pretraining(tasks: list[str], held_out: str, inputs: tuple[str, ...] = ()) -> BenchVariant:
    return task_variant(tasks, f"protocol.task={held_out}", field_name="pretrain_tasks", also=(held_out,),
                        inputs=inputs)


# Table 8: a semantic task added to the encoder's training serves the other semantic task it never trained with
CLAIMS = (
    Claim("segmentation-in-pretraining-helps-held-out-classification",
          "an encoder trained with ONet and segmentation, frozen, classifies better than the frozen ONet encoder",
          "generalising2022 Table 8",
          shapes_row("holdout", "top1", pretrain_tasks=["occupancy", "segmentation"], task="classification"), ABOVE,
          shapes_row("holdout", "top1", **ONET_ENCODER, task="classification"), published_a=0.95, published_b=0.89),
    Claim("classification-in-pretraining-helps-held-out-segmentation",
          "an encoder trained with ONet and classification, frozen, segments better than the frozen ONet encoder",
          "generalising2022 Table 8",
          shapes_row("holdout", "miou", pretrain_tasks=["occupancy", "classification"], task="segmentation"), ABOVE,
          shapes_row("holdout", "miou", **ONET_ENCODER, task="segmentation"), published_a=0.53, published_b=0.48),
)


@dataclass
class HoldoutConfig(TaskHeadsConfig):
    pretrain_tasks: list[str] = field(default_factory=lambda: ["occupancy"])  # A: trains the encoder
    task: str = "classification"  # B: trained afterwards on the frozen encoder

    def describe(self) -> str:
        return f"{' + '.join(self.pretrain_tasks)} -> frozen -> {self.task}"


SPEC = ComponentSpec(
    kind=Kind.PROTOCOL,
    name="holdout",
    factory="harness_plugins.protocols.holdout.protocol:HoldoutProtocol",
    config=HoldoutConfig,
    capabilities=ProtocolCaps(
        roles=("dataset", "encoder"),
        encodings=("global",),  # its heads (occupancy, classifier, segmentation, joint) decode global codes
        reference_tables=("generalising_t2", "generalising_t4", "generalising_t8"),
        reference_metrics={"IoU": "iou", "accuracy": "top1", "mIoU": "miou"},
        primary_metric="top1",
        floor_label=TASK_FLOOR_LABEL,
        # the paper's point cloud rows: classification / segmentation w/ ONet encoder, and each with the other
        # semantic task added to the encoder's training (Tables 2, 4, 8); every stage 1 is a multitask row's training
        # (or, for ONet alone, the reconstruction protocol's), shared
        reuses=("multitask", "reconstruction"),  # stage 1 is their training
        bench=(pretraining(["occupancy"], "classification", inputs=("points",)),
               pretraining(["occupancy"], "segmentation", inputs=("points",)),
               pretraining(["occupancy", "segmentation"], "classification", inputs=("points",)),
               pretraining(["occupancy", "classification"], "segmentation", inputs=("points",))),
        claims=CLAIMS,
    ),
    version="1",
    citation='Hughes et al., "Towards Generalising Neural Implicit Representations", ECCV Workshops 2022',
    description="Train the encoder with tasks A, freeze it, train a fresh head for task B; B's test metrics (and "
                "stage 1's validation score).",
    profiles=MULTITASK.profiles,
)
