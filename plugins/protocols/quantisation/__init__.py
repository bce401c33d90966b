"""Quantisation: one trained model evaluated under a list of per-layer bit configurations (uniform and
non-uniform), each scored with its total bits and memory: the table the bit-width search starts from
("Finding Non-uniform Quantization Schemes Using Multi-task Gaussian Processes", Table 1; thesis 3.2-3.5).

Kept torch-free so that listing components stays fast; the protocol lives in ``protocol.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.specs import BenchVariant, ComponentSpec, Kind, ParetoAxes, ProtocolCaps

from ..compression import BaselineConfig


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
        breakdown="configuration",
        pareto=ParetoAxes(size="size_mb", quality=("top1", "iou", "miou")),
        data_fingerprints="harness_plugins.protocols.compression.protocol:checkpoint_fingerprint",
        # uniform bit-widths on every model, and on ResNet-20 (19 convolutions) two non-uniform schemes of
        # NUQ Table 1's kind: more bits at the start, or at the end
        bench=(BenchVariant(("compressor=dsconv", "compressor.exempt_first=false",
                             "protocol.configurations=['8','4','3','2','8 333333 444444 555555','5 444444 333333 222222']"),
                            datasets=("synthetic_images",)),
               BenchVariant(("compressor=dsconv", "compressor.exempt_first=false",
                             "protocol.configurations=['8','4','3','2']"), datasets=("synthetic_voxels",))),
    ),
    version="1",
    citation=('Hughes et al., "Finding Non-uniform Quantization Schemes Using Multi-task Gaussian Processes", '
              'ECCV Workshops 2020'),
    description="Baseline (trained by the task's protocol, or a checkpoint) evaluated unquantised and under each "
                "per-layer bit configuration of the compressor: the task's score, total bits and size in MB.",
    profiles={"smoke": {"configurations": ["8", "2"]}},
)
