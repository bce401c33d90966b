"""Compression: a trained model, compressed (a compressor plugin replaces its layers), then fine-tuned; its
score before compression, right after it ("pre") and after fine-tuning ("post"), and what it saves
("Approximating Continuous Convolutions for Deep Network Compression", Table 1; DSConv).

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from harness.claims import Claim, RowSelector
from harness.specs import BenchVariant, ComponentSpec, Kind, ParetoAxes, ProtocolCaps
from harness.training_config import SMOKE_SCHEDULE, TrainingConfig

from .._task_floors import TASK_FLOOR_LABEL


@dataclass
class BaselineConfig:
    """Where the uncompressed model comes from."""

    # a trained model's state dict (``model.pt`` or ``best.pt`` of a run of the task's protocol with the same
    # encoder and decoder); empty: trained by the task's own protocol (once per recipe, see harness.trained)
    checkpoint: str = ""


@dataclass
class CompressionConfig(TrainingConfig, BaselineConfig):
    """The schedule is the fine-tuning's; the paper fine-tunes for 5 epochs after the approximation (CIFAR-10
    at batch 128: ~1950 steps)."""

    may_skip_training: ClassVar[bool] = True  # protocol.steps=0 and epochs=0: no fine-tuning


def resnet20_change(compressor: str, **settings: str) -> RowSelector:
    """The change in top-1 of ResNet-20 compressed by ``compressor`` with ``settings`` and fine-tuned, against the
    uncompressed model fine-tuned alike (``delta_control``). The papers compare against a fully trained network,
    which further training would not improve; the bench's baseline is trained briefly, so its plain ``delta``
    would credit compression with what the fine-tuning's extra steps teach any model."""
    config = {"encoder.name": "resnet_cifar", "compressor.name": compressor,
              **{f"compressor.{name}": value for name, value in settings.items()}}
    return RowSelector("compression", "delta_control", config, dataset="synthetic_images")


# ApproxConv Table 1's ResNet-20 rows print Δ in points of top-1 (-0.98, -0.97); NUQ Table 4 DSConv's accuracy loss
# at 4 bits (0.0%, ResNet-18 and -50 on ImageNet); written here as fractions
CLAIMS = (
    Claim("cosconv-3332-costs-about-a-point", "CosConv with harmonics 3,3,3,2 costs about a point of top-1 after "
          "fine-tuning", "approxconv2022 Table 1 (ResNet-20)", resnet20_change("cosconv", harmonics="3,3,3,2"),
          (-0.02, 0.0), published_a=-0.0098),
    Claim("chebconv-3332-costs-about-a-point", "ChebConv with harmonics 3,3,3,2 costs about a point of top-1 after "
          "fine-tuning", "approxconv2022 Table 1 (ResNet-20)", resnet20_change("chebconv", harmonics="3,3,3,2"),
          (-0.02, 0.0), published_a=-0.0097),
    Claim("dsconv-4-bit-within-a-point", "DSConv at 4 bits stays within about a point of the float model's top-1",
          "nuq2020 Table 4 (DSConv, ResNet-18)", resnet20_change("dsconv", bits="4"), (-0.01, 0.01),
          published_a=0.0),
)


SPEC = ComponentSpec(
    kind=Kind.PROTOCOL,
    name="compression",
    factory="harness_plugins.protocols.compression.protocol:CompressionProtocol",
    config=CompressionConfig,
    capabilities=ProtocolCaps(
        roles=("dataset", "encoder", "decoder", "compressor"),
        tasks=("classification", "occupancy", "segmentation"),
        encodings=("global",),
        reference_tables=("approxconv_t1", "nuq_t4"),
        reference_metrics={"pre_top1": "pre_top1", "post_top1": "top1", "delta": "delta", "params": "parameters",
                           "params_delta_pct": "parameters_change_pct", "model_size_mb": "size_mb"},
        primary_metric="delta",
        floor_label=TASK_FLOOR_LABEL,
        pareto=ParetoAxes(size="size_mb", quality=("top1", "iou", "miou")),
        # ApproxConv Table 1's ResNet-20 rows (CosConv/ChebConv harmonics per block), DSConv at 4 bits, and
        # BFP on the PointNet encoder of the reconstruction protocol
        reuses=("classification", "reconstruction", "segmentation"),  # the baseline is their training
        bench=(BenchVariant(("compressor=cosconv", "compressor.harmonics='3,3,3,2'"), datasets=("synthetic_images",)),
               BenchVariant(("compressor=chebconv", "compressor.harmonics='3,3,3,2'"), datasets=("synthetic_images",)),
               BenchVariant(("compressor=dsconv", "compressor.bits=4"), datasets=("synthetic_images",)),
               BenchVariant(("compressor=bfp", "compressor.bits=6"), datasets=("synthetic_shapes",),
                            inputs=("points",), tasks=("occupancy",))),
        data_fingerprints="harness_plugins.protocols.compression.protocol:baseline_fingerprint",
        claims=CLAIMS,
    ),
    version="1",
    citation=('Hughes et al., "Approximating Continuous Convolutions for Deep Network Compression", BMVC 2022; '
              'Nascimento et al., "DSConv: Efficient Convolution Operator", ICCV 2019'),
    description="Baseline (trained by the task's protocol, or a checkpoint) -> compressor -> fine-tune; the "
                "task's score before, right after (pre) and after fine-tuning, Δ, parameters, Δ% and size in MB.",
    profiles={"smoke": {**SMOKE_SCHEDULE},
              "quick": {"steps": 100, "batch_size": 32, "lr": 3e-4, "schedule": "cosine", "warmup_steps": 10,
                        "validate_every": 50, "checkpoint_every": 50}},
)
