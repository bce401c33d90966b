"""ChebConv: every conv kernel (k > 1 on each axis) as a separable Chebyshev series, N terms per axis.

Kept torch-free so that listing components stays fast; the shared series layer lives in ``../series.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.specs import ComponentSpec, CompressorCaps, Kind

from ..series_config import SeriesConfig


@dataclass
class ChebConvConfig(SeriesConfig):
    """Chebyshev polynomials T_a(x), a = 0..N-1, at k equispaced points x in [-1, 1]; before the fit the constant
    term of each (output, input) pair starts at its kernel's mean and the others at zero, as the paper does."""


SPEC = ComponentSpec(
    kind=Kind.COMPRESSOR,
    name="chebconv",
    factory="harness_plugins.compressors.series:build_chebconv",
    config=ChebConvConfig,
    capabilities=CompressorCaps(layer_types=("Conv1d", "Conv2d", "Conv3d")),
    version="1",
    citation='Costain and Prisacariu, "Approximating Continuous Convolutions for Deep Network Compression", '
             'BMVC 2022',
    description="ChebConv: each kernel of a 1D/2D/3D convolution becomes a separable Chebyshev series with N terms "
                "per axis, coefficients per (output, input) channel pair fitted to the trained kernel.",
)
