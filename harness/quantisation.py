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

The result is the formula evaluated exactly and rounded once to the input's dtype (subnormal block maxima
included). It is a new contiguous tensor without gradient history: train through it with
``straight_through``.

How it is fast (about 4 passes over memory plus one reduction, pure PyTorch): the tensor is viewed as
[before, channels, after] without any copy (a contiguous input), the blocks as a split of the channel dimension
(a channel count that the block does not divide leaves a shorter last block, which is the zero-padded block:
padding changes neither its maximum nor its other elements); ``amax`` and ``amin`` give each block's largest
magnitude, ``frexp`` its exponent, and the power-of-two scales are built from their bit patterns (exact), so the
elementwise work is multiply, round, clamp, multiply, in place. Tensors holding NaN/Inf take a slower masked path;
the arithmetic moves to a wider dtype only when a scale 2^(m-1-E) would not be representable in the input's own
(float16 inputs; tiny blocks with exponent_bits >= 8).
"""
from __future__ import annotations

import math

import torch

ROUNDINGS = ("even", "away")
_WIDER = (torch.float32, torch.float64)


def bfp_quantise(x: torch.Tensor, bits: int, block: int = 32, axis: int = 1, exponent_bits: int = 7,
                 rounding: str = "even") -> torch.Tensor:
    """``x`` with every block of ``block`` elements along ``axis`` in BFP of ``bits`` bits per element."""
    if bits < 2:
        raise ValueError(f"bits={bits}: BFP needs at least 2 bits per element (a sign and a magnitude bit)")
    if block < 1 or exponent_bits < 1:
        raise ValueError(f"block={block}, exponent_bits={exponent_bits}: both must be at least 1")
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding={rounding!r}: expected one of {ROUNDINGS}")
    if not x.is_floating_point():
        raise TypeError(f"BFP quantises floating-point tensors, got {x.dtype}")
    length = x.shape[axis]  # IndexError for a bad axis, as movedim would raise
    axis = axis % x.dim()
    with torch.no_grad():
        if x.numel() == 0:
            return x.detach().clone()
        before, after = math.prod(x.shape[:axis]), math.prod(x.shape[axis + 1:])
        flat = x.detach().contiguous().view(before, length, after)
        out = _quantise(flat, bits, block, exponent_bits, rounding)
        return out.view(x.shape)


def _quantise(flat: torch.Tensor, bits: int, block: int, exponent_bits: int, rounding: str) -> torch.Tensor:
    """BFP of ``flat`` [P, C, Q] with blocks along C, in the cheapest dtype that computes it exactly."""
    pieces = _block_views(flat, block)
    scales = _float32_scales(pieces, bits, exponent_bits)
    finite = True
    if scales is None:  # the general path: any dtype and exponent range, NaN/Inf
        magnitudes = [_block_magnitude(view) for view in pieces]
        finite = all(bool(torch.isfinite(magnitude).all()) for magnitude in magnitudes)
        if not finite:  # a NaN or Inf in some block: its exponent comes from the finite elements only
            magnitudes = [torch.where(torch.isfinite(view), view.abs(), 0).amax(dim=2, keepdim=True)
                          for view in pieces]
        low, high = -(2 ** (exponent_bits - 1)), 2 ** (exponent_bits - 1) - 1
        shifts = [bits - 2 - _shared_exponent(magnitude, low, high) for magnitude in magnitudes]
        compute = _exact_dtype(flat.dtype, shifts)
        if compute != flat.dtype:
            return _quantise(flat.to(compute), bits, block, exponent_bits, rounding).to(flat.dtype)
        scales = [(_power_of_two(shift, flat.dtype), _power_of_two(-shift, flat.dtype)) for shift in shifts]

    out = torch.empty_like(flat)
    limit = 2 ** (bits - 1) - 1
    for view, target, (scale, inverse) in zip(pieces, _block_views(out, block), scales):
        torch.mul(view, scale, out=target)
        if rounding == "even":
            target.round_()
        else:
            _round_half_away_(target)
        target.clamp_(-limit, limit).mul_(inverse)
        if not finite:  # NaN went through round/clamp/scale unchanged; put the infinities back
            target.copy_(torch.where(torch.isinf(view), view, target))
    return out


def _float32_scales(pieces: list[torch.Tensor], bits: int,
                    exponent_bits: int) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """The common case in few operations: float32, at most 7 exponent bits, all finite. Per block, the biased
    exponent field of the largest magnitude (bits 23..30) clamped to [low, high] + 127 is the shared exponent (a
    zero or subnormal maximum has field 0, below any low >= -64, so it clamps exactly as floor(log2) would), and
    the inverse scale 2^(E - (m - 1)) is that field minus m - 1, shifted back into place; the scale is its
    reciprocal (exact for a power of two). None when another path is needed (a block's field is 255: NaN/Inf)."""
    if pieces[0].dtype != torch.float32 or exponent_bits > 7 or bits > 24:
        return None
    low, high = -(2 ** (exponent_bits - 1)), 2 ** (exponent_bits - 1) - 1
    scales = []
    for view in pieces:
        field = _block_magnitude(view).view(torch.int32)
        field >>= 23
        if int(field.max()) == 255:
            return None
        field.clamp_(low + 127, high + 127).sub_(bits - 2).bitwise_left_shift_(23)
        inverse = field.view(torch.float32)
        scales.append((torch.reciprocal(inverse), inverse))
    return scales


def _block_views(flat: torch.Tensor, block: int) -> list[torch.Tensor]:
    """[P, groups, block, Q] views of the whole blocks, and [P, 1, rest, Q] of a shorter last block (no copies)."""
    p, c, q = flat.shape
    whole = c // block * block
    views = []
    if whole:
        views.append(flat[:, :whole].view(p, whole // block, block, q))
    if whole < c:
        views.append(flat[:, whole:].view(p, 1, c - whole, q))
    return views


def _block_magnitude(view: torch.Tensor) -> torch.Tensor:
    """Largest magnitude per block, [P, G, 1, Q] (NaN when the block holds a NaN, Inf an Inf): two read-only
    reductions (``aminmax`` is one, but not vectorised across the block dimension here: about 5x slower)."""
    largest = view.amax(dim=2, keepdim=True)
    return torch.maximum(largest, view.amin(dim=2, keepdim=True).neg_())


def _shared_exponent(magnitude: torch.Tensor, low: int, high: int) -> torch.Tensor:
    """floor(log2(magnitude)) clamped to [low, high], exact (frexp, subnormals included), as int64.

    An all-zero block quantises to zero under any finite scale; it gets the exponent nearest 0 in range, so that
    a wide exponent range never forces a scale that the dtype cannot hold."""
    _, exponent = torch.frexp(magnitude)  # magnitude = mantissa * 2^exponent, mantissa in [0.5, 1)
    exponent = exponent.to(torch.int64) - 1
    exponent = torch.where(magnitude > 0, exponent, min(max(0, low), high))
    return exponent.clamp_(low, high)


def _exact_dtype(dtype: torch.dtype, shifts: list[torch.Tensor]) -> torch.dtype:
    """The first of ``dtype``, float32, float64 in which every 2^shift and 2^-shift is exactly representable."""
    largest = max(int(shift.abs().max()) for shift in shifts)
    for candidate in (dtype, *_WIDER):
        info = torch.finfo(candidate)
        if largest <= math.frexp(info.max)[1] - 1 and candidate.itemsize >= dtype.itemsize:
            return candidate
    raise ValueError(f"exponent range too wide to compute: scales up to 2^{largest} (exponent_bits too large)")


def _power_of_two(shift: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """2^shift built from the bit pattern of a float64 (exact), in ``dtype``."""
    return ((shift + 1023) << 52).view(torch.float64).to(dtype)


def _round_half_away_(values: torch.Tensor) -> torch.Tensor:
    """Round half away from zero in place, exactly (``floor(|y| + 0.5)`` rounds 0.5 - ulp/2 up to 1)."""
    whole = values.trunc()
    fraction = values.sub_(whole)  # exact
    whole.add_((fraction >= 0.5).to(whole.dtype)).sub_((fraction <= -0.5).to(whole.dtype))
    return values.copy_(whole)


def straight_through(x: torch.Tensor, quantised: torch.Tensor) -> torch.Tensor:
    """The quantised values forward, the identity's gradient backward (straight-through estimator)."""
    return x + (quantised - x).detach()
