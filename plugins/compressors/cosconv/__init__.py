"""CosConv: every conv kernel (k > 1 on each axis) as a separable cosine series, N harmonics per axis.

Kept torch-free so that listing components stays fast; the shared series layer lives in ``../series.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.specs import ComponentSpec, CompressorCaps, Kind

from ..series_config import SeriesConfig


@dataclass
class CosConvConfig(SeriesConfig):
    """Cosine terms cos(a·x), a = 0..N-1, at k equispaced points x in [0.2π, 0.8π]; coefficients start from
    N(0, 1/(C_in·k^d)) before the fit, as the paper does."""


SPEC = ComponentSpec(
    kind=Kind.COMPRESSOR,
    name="cosconv",
    factory="harness_plugins.compressors.series:build_cosconv",
    config=CosConvConfig,
    capabilities=CompressorCaps(layer_types=("Conv1d", "Conv2d", "Conv3d")),
    version="1",
    citation='Costain and Prisacariu, "Approximating Continuous Convolutions for Deep Network Compression", '
             'BMVC 2022',
    description="CosConv: each kernel of a 1D/2D/3D convolution becomes a separable cosine series with N harmonics "
                "per axis, coefficients per (output, input) channel pair fitted to the trained kernel.",
)
