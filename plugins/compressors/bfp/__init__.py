"""Block floating point (BFP) on the weights and/or input activations of Conv1d/2d/3d and Linear layers.

Kept torch-free so that listing components stays fast; the layer lives in ``layer.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.config_checks import require_positive
from harness.specs import ComponentSpec, CompressorCaps, Kind

ALL_LAYER_TYPES = ("Conv1d", "Conv2d", "Conv3d", "Linear")


@dataclass
class BFPConfig:
    """Bits per element per layer; blocks run along the input-channel axis (see harness.quantisation)."""

    bits: str = "8"  # "8" for all layers, "6 555 44" one digit per layer, "8,6,4" per block (harness.compression)
    block: int = 32  # elements sharing one exponent; 1 = per-element floating point
    exponent_bits: int = 7  # bits of the shared exponent
    rounding: str = "even"  # "even" (half to even) or "away" (half away from zero)
    weights: bool = True  # quantise the weights (blocks along axis 1, per output channel and kernel position)
    activations: bool = True  # quantise each layer's input (blocks along its channel axis)
    layer_types: list[str] = field(default_factory=lambda: list(ALL_LAYER_TYPES))
    exempt_first: bool = False  # keep the model's first eligible layer in floating point
    exempt_last: bool = False  # ... and/or its last

    def __post_init__(self) -> None:
        require_positive(self, "block", "exponent_bits")

    def describe(self) -> str:
        what = "+".join(part for part, on in (("weights", self.weights), ("activations", self.activations)) if on)
        exempted = "".join(f", {which} float" for which, on in (("first", self.exempt_first),
                                                                ("last", self.exempt_last)) if on)
        return f"bits {self.bits}, block {self.block}, {what or 'nothing'}{exempted}"


SPEC = ComponentSpec(
    kind=Kind.COMPRESSOR,
    name="bfp",
    factory="harness_plugins.compressors.bfp.layer:build",
    config=BFPConfig,
    capabilities=CompressorCaps(layer_types=ALL_LAYER_TYPES),
    version="1",
    citation=('Drumond et al., "Training DNNs with Hybrid Block Floating Point", NeurIPS 2018; '
              'Song et al., "Computation Error Analysis of Block Floating Point Arithmetic Oriented Convolution '
              'Neural Network Accelerator Design", AAAI 2018'),
    description="Block floating point: blocks of B values along the channel axis share one exponent, each value "
                "keeps a sign and bits-1 magnitude bits; on weights and/or input activations, straight-through "
                "gradients when training.",
)
