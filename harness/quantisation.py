"""Block floating point (BFP) quantisation, shared by the compressors (``bfp`` itself, DSConv's activations,
the series coefficients of CosConv/ChebConv).

Values are split into blocks of ``block`` consecutive elements along ``axis`` (the last block zero-padded);
each block shares one exponent E = floor(log2(max |x|)) clamped to the range of ``exponent_bits`` signed
bits, [-2^(e-1), 2^(e-1) - 1]; each element keeps a sign and m = bits - 1 magnitude bits (the numbers of
MXINT-``bits``):

    x' = clamp(round(x * 2^(m-1-E)), -(2^m - 1), 2^m - 1) / 2^(m-1-E)

Rounding is half to even by default (``torch.round``), or half away from zero. An all-zero block stays
zero. A NaN or infinite element passes through unchanged and the block's exponent comes from its finite
elements, so one bad value does not wipe out its neighbours. Block size 1 is per-element floating point.
"""
from __future__ import annotations

import torch

ROUNDINGS = ("even", "away")


def bfp_quantise(x: torch.Tensor, bits: int, block: int = 32, axis: int = 1, exponent_bits: int = 7,
                 rounding: str = "even") -> torch.Tensor:
    """``x`` with every block of ``block`` elements along ``axis`` in BFP of ``bits`` bits per element."""
    if bits < 2:
        raise ValueError(f"bits={bits}: BFP needs at least 2 bits per element (a sign and a magnitude bit)")
    if block < 1 or exponent_bits < 1:
        raise ValueError(f"block={block}, exponent_bits={exponent_bits}: both must be at least 1")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding={rounding!r}: expected one of {ROUNDINGS}")
    moved = x.movedim(axis, -1)
    length = moved.shape[-1]
    padded = torch.nn.functional.pad(moved, (0, -length % block))
    blocks = padded.reshape(*padded.shape[:-1], -1, block)

    finite = torch.isfinite(blocks)
    magnitude = torch.where(finite, blocks.abs(), torch.zeros_like(blocks)).amax(dim=-1, keepdim=True)
    low, high = -(2 ** (exponent_bits - 1)), 2 ** (exponent_bits - 1) - 1
    exponent = torch.floor(torch.log2(magnitude)).clamp(low, high)  # log2(0) = -inf clamps to low: harmless
    mantissa = bits - 1
    scale = torch.exp2(mantissa - 1 - exponent)
    scaled = blocks * scale
    if rounding == "even":
        rounded = torch.round(scaled)
    else:
        rounded = torch.sign(scaled) * torch.floor(scaled.abs() + 0.5)
    limit = 2 ** mantissa - 1
    quantised = torch.where(finite, rounded.clamp(-limit, limit) / scale, blocks)

    out = quantised.reshape(padded.shape)[..., :length]
    return out.movedim(-1, axis)


def straight_through(x: torch.Tensor, quantised: torch.Tensor) -> torch.Tensor:
    """The quantised values forward, the identity's gradient backward (straight-through estimator)."""
    return x + (quantised - x).detach()
