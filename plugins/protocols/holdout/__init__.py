"""Hold-out: does an encoding trained for task set A serve a task B it never trained with?

Stage 1 trains the encoder with the tasks A (e.g. reconstruction alone: the "ONet encoder"); stage 2
freezes it and trains a fresh head for task B ("Towards Generalising Neural Implicit Representations",
Tables 2, 4, 8: "Classification w/ ONet encoder", "Multi Task w/ Seg & ONet encoder"...). The same
task B trained jointly is the ``multitask`` protocol with A + B.

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.specs import BenchVariant, ComponentSpec, Kind, ProtocolCaps

from ..multitask import SPEC as MULTITASK
from ..multitask import TaskHeadsConfig, task_variant


def pretraining(tasks: list[str], held_out: str, inputs: tuple[str, ...] = ()) -> BenchVariant:
    return task_variant(tasks, f"protocol.task={held_out}", field_name="pretrain_tasks", also=(held_out,),
                        inputs=inputs)


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
        # the paper's rows: classification / segmentation w/ ONet encoder, and each with the other
        # semantic task added to the encoder's training (Tables 2, 4, 8)
        bench=(pretraining(["occupancy"], "classification"),
               pretraining(["occupancy"], "segmentation", inputs=("points",)),
               pretraining(["occupancy", "segmentation"], "classification", inputs=("points",)),
               pretraining(["occupancy", "classification"], "segmentation", inputs=("points",))),
    ),
    version="1",
    citation='Hughes et al., "Towards Generalising Neural Implicit Representations", ECCV Workshops 2022',
    description="Train the encoder with tasks A, freeze it, train a fresh head for task B; B's metrics "
                "(and A's, from stage 1).",
    profiles=MULTITASK.profiles,
)
