"""Quantisation: one trained model evaluated under a list of per-layer bit configurations (uniform and
non-uniform), each scored with its total bits and memory: the table the bit-width search starts from
("Finding Non-uniform Quantization Schemes Using Multi-task Gaussian Processes", Table 1; thesis 3.2-3.5).

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.claims import ABOVE, Claim, RowSelector
from harness.specs import BenchVariant, ComponentSpec, Kind, ParetoAxes, ProtocolCaps

from .._task_floors import TASK_FLOOR_LABEL
from ..compression import BaselineConfig

# how the uncompressed model's row is labelled, as the papers print it
FLOAT_LABEL = "32-bit Floating Point"
# NUQ Table 1's comparison on ResNet-20's 19 convolutions (the first quantised too): more bits early, falling per
# stage, against the exact reverse, both 59 bits in total
DECREASING = "5 444444 333333 222222"
INCREASING = DECREASING[::-1]


@dataclass
class QuantisationConfig(BaselineConfig):
    # the compressor settings evaluated one by one (``compressor.<setting>``), in the papers' notation:
    # "4" for every layer, "6 555 44 333 22 11" one digit per layer, "6×3 5×5" runs
    configurations: list[str] = field(default_factory=lambda: ["8", "6", "4", "3", "2"])
    setting: str = "bits"  # the compressor config field each configuration sets

    def describe(self) -> str:
        return f"{len(self.configurations)} {self.setting} configurations"

    def swept_fields(self) -> dict[str, list[str]]:
        """The compressor field its configurations set: method labels show it as swept, not its default."""
        return {"compressor": [self.setting]}


def configuration_row(configuration: str, encoder: str, dataset: str) -> RowSelector:
    """Top-1 of one bit configuration (or the float model) in the bench's DSConv runs of ``encoder``."""
    return RowSelector("quantisation", "top1", {"encoder.name": encoder, "compressor.name": "dsconv"},
                       dataset=dataset, class_name=configuration)


def eight_bits_within_a_point(encoder: str, printed: str, published_a: float, published_b: float) -> Claim:
    """Thesis Table 3.3's uniform 8-bit row of a voxel classifier (``printed`` as there) against its float row."""
    return Claim(f"8-bit-{encoder}-within-a-point-of-float", f"8-bit weights and activations keep {encoder}'s top-1 "
                 "within about a point of the float model's", f"thesis2023 Table 3.3 ({printed} vs float)",
                 configuration_row("8", encoder, "synthetic_voxels"), (-0.01, 0.01),
                 configuration_row(FLOAT_LABEL, encoder, "synthetic_voxels"), published_a=published_a,
                 published_b=published_b)


CLAIMS = (
    Claim("decreasing-bits-beat-their-reverse", "at equal total bits, a bit-width decreasing through the network "
          "beats the same widths in reverse order", "nuq2020 Table 1 (ResNet18: 666 5555 4444 3333 2222 1 vs reverse)",
          configuration_row(DECREASING, "resnet_cifar", "synthetic_images"), ABOVE,
          configuration_row(INCREASING, "resnet_cifar", "synthetic_images"), published_a=0.954, published_b=0.929),
    eight_bits_within_a_point("voxnet", "VoxNet 88", 0.817, 0.817),
    eight_bits_within_a_point("shapenets_cnn", "ShapeNets 888", 0.790, 0.788),
)


SPEC = ComponentSpec(
    kind=Kind.PROTOCOL,
    name="quantisation",
    factory="harness_plugins.protocols.quantisation.protocol:QuantisationProtocol",
    config=QuantisationConfig,
    capabilities=ProtocolCaps(
        roles=("dataset", "encoder", "decoder", "compressor"),
        tasks=("classification", "occupancy", "segmentation"),
        encodings=("global",),
        reference_tables=("nuq_t1", "thesis_t3_2", "thesis_t3_3"),
        reference_metrics={"top1": "top1", "memory_mb": "size_mb"},
        primary_metric="top1",
        floor_label=TASK_FLOOR_LABEL,
        breakdown="configuration",
        pareto=ParetoAxes(size="size_mb", quality=("top1", "iou", "miou")),
        data_fingerprints="harness_plugins.protocols.compression.protocol:baseline_fingerprint",
        # uniform bit-widths on every model, and on ResNet-20 a decreasing schedule and its reverse
        reuses=("classification", "reconstruction", "segmentation"),  # the baseline is their training
        bench=(BenchVariant(("compressor=dsconv", "compressor.exempt_first=false",
                             f"protocol.configurations=['8','4','3','2','{DECREASING}','{INCREASING}']"),
                            datasets=("synthetic_images",)),
               BenchVariant(("compressor=dsconv", "compressor.exempt_first=false",
                             "protocol.configurations=['8','4','3','2']"), datasets=("synthetic_voxels",))),
        claims=CLAIMS,
    ),
    version="1",
    citation=('Hughes et al., "Finding Non-uniform Quantization Schemes Using Multi-task Gaussian Processes", '
              'ECCV Workshops 2020'),
    description="Baseline (trained by the task's protocol, or a checkpoint) evaluated unquantised and under each "
                "per-layer bit configuration of the compressor: the task's score, total bits and size in MB.",
    profiles={"smoke": {"configurations": ["8", "2"]}},
)
