"""Compression: a trained model, compressed (a compressor plugin replaces its layers), then fine-tuned; its
score before compression, right after it ("pre") and after fine-tuning ("post"), and what it saves
("Approximating Continuous Convolutions for Deep Network Compression", Table 1; DSConv).

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.specs import BenchVariant, ComponentSpec, Kind, ParetoAxes, ProtocolCaps
from harness.training_config import SMOKE_SCHEDULE, TrainingConfig


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
        pareto=ParetoAxes(size="size_mb", quality=("top1", "iou", "miou")),
        # ApproxConv Table 1's ResNet-20 rows (CosConv/ChebConv harmonics per block), DSConv at 4 bits, and
        # BFP on the PointNet encoder of the reconstruction protocol
        bench=(BenchVariant(("compressor=cosconv", "compressor.harmonics='3,3,3,2'"), datasets=("synthetic_images",)),
               BenchVariant(("compressor=chebconv", "compressor.harmonics='3,3,3,2'"), datasets=("synthetic_images",)),
               BenchVariant(("compressor=dsconv", "compressor.bits=4"), datasets=("synthetic_images",)),
               BenchVariant(("compressor=bfp", "compressor.bits=6"), datasets=("synthetic_shapes",),
                            inputs=("points",), tasks=("occupancy",))),
        data_fingerprints="harness_plugins.protocols.compression.protocol:checkpoint_fingerprint",
    ),
    version="1",
    citation=('Hughes et al., "Approximating Continuous Convolutions for Deep Network Compression", BMVC 2022; '
              'Nascimento et al., "DSConv: Efficient Convolution Operator", ICCV 2019'),
    description="Baseline (trained by the task's protocol, or a checkpoint) -> compressor -> fine-tune; the "
                "task's score before, right after (pre) and after fine-tuning, Δ, parameters, Δ% and size in MB.",
    profiles={"smoke": {**SMOKE_SCHEDULE},
              "quick": {"steps": 100, "batch_size": 64, "lr": 3e-4, "validate_every": 50, "checkpoint_every": 50}},
)
