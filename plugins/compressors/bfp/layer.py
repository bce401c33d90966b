"""The ``bfp`` compressor: Conv1d/2d/3d and Linear layers with BFP weights and/or input activations.

Weight blocks run along axis 1 of the weight (the input channels) for each output channel and kernel position;
activation blocks along the channel axis of the layer's input (axis 1 of [B, C, ...] for a convolution, the last
axis of [..., C] for a Linear layer). Training goes through straight-through estimators; in evaluation (no
gradient recorded) the quantised weight is computed once and kept until the weight changes.

Storage: ``bits`` per weight plus one ``exponent_bits`` shared exponent per weight block; the bias stays 32-bit.
Activations are not stored, so quantising only them leaves the size unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.compression import (FLOAT_BITS, CompressionReport, compress_layers, eligible_layers, exempt,
                                 parse_settings)
from harness.quantisation import ROUNDINGS, bfp_quantise

from ..common import QuantisedLayer, bfp_activations, bias_bits, require_layers
from . import BFPConfig


class BFPLayer(QuantisedLayer):
    """A Conv1d/2d/3d or Linear layer computing with BFP weights and/or BFP inputs."""

    def __init__(self, layer: nn.Module, bits: int, block: int = 32, exponent_bits: int = 7, rounding: str = "even",
                 weights: bool = True, activations: bool = True) -> None:
        super().__init__(layer, bits, block)
        self.exponent_bits, self.rounding = exponent_bits, rounding
        self.quantise_weights, self.quantise_activations = weights, activations

    def quantise(self, weight: torch.Tensor) -> torch.Tensor:
        return bfp_quantise(weight, self.bits, block=self.block, axis=1, exponent_bits=self.exponent_bits,
                            rounding=self.rounding)

    def quantise_input(self, x: torch.Tensor) -> torch.Tensor:
        if not self.quantise_activations:
            return x
        return bfp_activations(x, self.bits, self.block, self.op.channel_axis, self.exponent_bits, self.rounding)

    def effective_weight(self) -> torch.Tensor:
        return super().effective_weight() if self.quantise_weights else self.weight

    def stored_bits(self) -> int:
        if self.quantise_weights:
            weight = self.weight.numel() * self.bits + self.weight_blocks() * self.exponent_bits
        else:
            weight = self.weight.numel() * FLOAT_BITS
        return weight + bias_bits(self.bias)

    def extra_repr(self) -> str:
        what = "+".join(name for name, on in (("weights", self.quantise_weights),
                                              ("activations", self.quantise_activations)) if on)
        return (f"{self.op.describe()}, bits={self.bits}, block={self.block}, exponent_bits={self.exponent_bits}, "
                f"rounding={self.rounding}, {what}")


@dataclass
class BFPCompressor:
    config: BFPConfig

    def __post_init__(self) -> None:
        config = self.config
        if config.rounding not in ROUNDINGS:
            raise ValueError(f"bfp rounding={config.rounding!r}: expected one of {ROUNDINGS}")
        self.settings = parse_settings(config.bits, "bits")

    def compress(self, model: nn.Module) -> CompressionReport:
        config = self.config
        layers = exempt(eligible_layers(model, list(config.layer_types)), config.exempt_first, config.exempt_last)
        require_layers(layers, model, "bfp", f"layer_types={list(config.layer_types)}, exempt_first="
                       f"{config.exempt_first}, exempt_last={config.exempt_last}")
        bits = self.settings.assign(layers, "bits")
        low = [name for name, value in bits.items() if value < 2]
        if low:
            raise ValueError(f"bfp bits={config.bits!r}: at least 2 bits per element (a sign and a magnitude bit); "
                             f"layers {low} get fewer")
        return compress_layers(model, layers, bits, lambda layer, b: BFPLayer(
            layer, b, block=config.block, exponent_bits=config.exponent_bits, rounding=config.rounding,
            weights=config.weights, activations=config.activations))


def build(config: BFPConfig) -> BFPCompressor:
    return BFPCompressor(config)
