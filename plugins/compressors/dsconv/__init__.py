"""DSConv: per-block integer weights with a least-squares floating-point scale, BFP activations.

Kept torch-free so that listing components stays fast; the layer lives in ``layer.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import require_positive
from harness.specs import ComponentSpec, CompressorCaps, Kind


@dataclass
class DSConvConfig:
    """Bits per layer from 1 to 8; the paper keeps the first layer and the fully-connected layers in float."""

    bits: str = "4"  # "4" for all layers, "6 555 44" one digit per layer, "8,6,4" per block (harness.compression)
    block: int = 32  # weights per block along the input channels (one 32-bit scale each)
    activations: bool = True  # quantise each quantised layer's input with BFP at the same bit-width
    exempt_first: bool = True  # keep the model's first conv layer in floating point
    linear: bool = False  # also quantise Linear layers (fully-connected layers stay float by default)

    def __post_init__(self) -> None:
        require_positive(self, "block")

    def describe(self) -> str:
        parts = [f"bits {self.bits}", f"block {self.block}"]
        if not self.activations:
            parts.append("float activations")
        if not self.exempt_first:
            parts.append("first layer quantised")
        if self.linear:
            parts.append("linear quantised")
        return ", ".join(parts)


SPEC = ComponentSpec(
    kind=Kind.COMPRESSOR,
    name="dsconv",
    factory="harness_plugins.compressors.dsconv.layer:build",
    config=DSConvConfig,
    capabilities=CompressorCaps(layer_types=("Conv1d", "Conv2d", "Conv3d", "Linear")),
    version="1",
    citation='Gennari do Nascimento, Fawcett and Prisacariu, "DSConv: Efficient Convolution Operator", ICCV 2019',
    description="DSConv: blocks of B weights along the input channels become b-bit integers and one least-squares "
                "32-bit scale; the activations entering each quantised layer are BFP at the same bit-width; "
                "straight-through gradients when training.",
)
