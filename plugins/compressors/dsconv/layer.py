"""The ``dsconv`` compressor (DSConv, Gennari do Nascimento et al., ICCV 2019).

Weights are split into blocks of B (32) along the input channels for each output channel and kernel position (a
channel count B does not divide leaves a shorter last block: the zero padding of the paper, which changes neither
the integers nor the scale). Per block, with ``a`` the signed value of its largest-magnitude weight (the first one
in block order when a weight and its negation tie):

    q = clamp(round(-w * 2^(b-1) / a), -2^(b-1), 2^(b-1) - 1)      (round half to even)
    alpha = sum(w q) / sum(q^2)                                      (least squares; 0 for an all-zero block)
    w' = alpha q

so ``a`` itself maps exactly to -2^(b-1), the end of the range that two's complement can hold, and alpha < 0
when a > 0. A weight of the opposite sign and the same magnitude would be +2^(b-1) and clamps to 2^(b-1) - 1.

One bit (b = 1): the same formula gives q = clamp(round(-w / a), -1, 0), so q is -1 exactly where w has a's sign
and |w| > |a| / 2 (the tie |a| / 2 rounds to even, 0) and 0 everywhere else, and w' = alpha q keeps only those
weights, at their mean: a one-sided binary code {-1, 0}, kept as the formula gives it (not replaced by sign
binarisation, which the formula cannot produce). The activations of a 1-bit layer are BFP at 2 bits, the fewest
BFP can hold (a sign and one magnitude bit).

Activations entering each quantised layer are BFP at the layer's bit-width (at least 2), blocks of B along the
channel axis, 7-bit shared exponents. Training goes through straight-through estimators (the float weights keep
learning); in evaluation (no gradient recorded) the quantised weight is computed once and kept until the weight
changes, so a forward costs the float convolution plus the activation quantisation.

Storage: b bits per weight, one 32-bit alpha per block, the bias at 32 bits.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from harness.compression import FLOAT_BITS, CompressionReport, compress_layers, eligible_layers, exempt, parse_settings

from ..common import QuantisedLayer, bfp_activations, bias_bits, require_layers
from . import DSConvConfig

MAX_BITS = 8
ACTIVATION_EXPONENT_BITS = 7


def dsconv_quantise(weight: torch.Tensor, bits: int, block: int = 32) -> tuple[torch.Tensor, torch.Tensor,
                                                                               torch.Tensor]:
    """DSConv of ``weight`` [O, I, *kernel] (or [O, I]): the integers q (int8, the weight's shape), the scales alpha
    [O, *kernel, ceil(I / block)] (one per block) and the dequantised weight alpha * q (the weight's dtype)."""
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits={bits}: DSConv takes 1 to {MAX_BITS} bits per weight")
    if block < 1:
        raise ValueError(f"block={block}: must be at least 1")
    with torch.no_grad():
        channels = weight.shape[1]
        rows = weight.detach().movedim(1, -1)  # [O, *kernel, I]
        padded = F.pad(rows, (0, -channels % block))
        blocks = padded.reshape(*padded.shape[:-1], -1, block)  # [O, *kernel, groups, B]
        largest = blocks.gather(-1, blocks.abs().argmax(dim=-1, keepdim=True))  # a, signed; first on ties
        half = 2 ** (bits - 1)
        divisor = torch.where(largest == 0, torch.ones_like(largest), largest)  # all-zero block: q = 0
        q = torch.round(-(blocks * half) / divisor).clamp_(-half, half - 1)
        norm = (q * q).sum(dim=-1)
        alpha = (blocks * q).sum(dim=-1) / torch.where(norm == 0, torch.ones_like(norm), norm)
        dequantised = alpha.unsqueeze(-1) * q

        def back(value: torch.Tensor) -> torch.Tensor:
            return value.reshape(padded.shape)[..., :channels].movedim(-1, 1).contiguous()

        return back(q).to(torch.int8), alpha, back(dequantised)


class DSConvLayer(QuantisedLayer):
    """A Conv1d/2d/3d (or Linear) layer computing with DSConv weights and BFP inputs."""

    def __init__(self, layer: nn.Module, bits: int, block: int = 32, activations: bool = True) -> None:
        if not 1 <= bits <= MAX_BITS:
            raise ValueError(f"bits={bits}: DSConv takes 1 to {MAX_BITS} bits per weight")
        super().__init__(layer, bits, block)
        self.quantise_activations = activations

    @property
    def activation_bits(self) -> int:
        return max(self.bits, 2)

    def quantise(self, weight: torch.Tensor) -> torch.Tensor:
        return dsconv_quantise(weight, self.bits, self.block)[2]

    def quantise_input(self, x: torch.Tensor) -> torch.Tensor:
        if not self.quantise_activations:
            return x
        return bfp_activations(x, self.activation_bits, self.block, self.op.channel_axis, ACTIVATION_EXPONENT_BITS)

    def stored_bits(self) -> int:
        return self.weight.numel() * self.bits + self.weight_blocks() * FLOAT_BITS + bias_bits(self.bias)

    def extra_repr(self) -> str:
        activations = f"BFP-{self.activation_bits} activations" if self.quantise_activations else "float activations"
        return f"{self.op.describe()}, bits={self.bits}, block={self.block}, {activations}"


@dataclass
class DSConvCompressor:
    config: DSConvConfig

    def __post_init__(self) -> None:
        self.settings = parse_settings(self.config.bits, "bits")

    def compress(self, model: nn.Module) -> CompressionReport:
        config = self.config
        types = ["Conv1d", "Conv2d", "Conv3d"] + (["Linear"] if config.linear else [])
        layers = exempt(eligible_layers(model, types), config.exempt_first, last=False)
        require_layers(layers, model, "dsconv", f"{'/'.join(types)} layers"
                       + (", the first exempt" if config.exempt_first else "")
                       + ("" if config.linear else "; Linear layers only with linear=true"))
        bits = self.settings.assign(layers, "bits")
        bad = [name for name, value in bits.items() if not 1 <= value <= MAX_BITS]
        if bad:
            raise ValueError(f"dsconv bits={config.bits!r}: DSConv takes 1 to {MAX_BITS} bits per weight; "
                             f"layers {bad} are outside")
        return compress_layers(model, layers, bits, lambda layer, b: DSConvLayer(
            layer, b, block=config.block, activations=config.activations))


def build(config: DSConvConfig) -> DSConvCompressor:
    return DSConvCompressor(config)
