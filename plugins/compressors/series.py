"""CosConv and ChebConv (Costain and Prisacariu, "Approximating Continuous Convolutions for Deep Network
Compression", BMVC 2022): every kernel of a convolution as a separable series.

For a Conv1d/2d/3d whose kernel size k is greater than 1 on every axis and N <= k terms per axis, each kernel of
each (output, input) channel pair is

    w[o, i, x, y, z] = sum_{a, b, c < N} C[o, i, a, b, c] phi_a(x) phi_b(y) phi_c(z)

on k equispaced sample points per axis: cosine terms phi_a(x) = cos(a x) on [0.2 pi, 0.8 pi] (CosConv), or the
Chebyshev polynomials of the first kind phi_a(x) = T_a(x) on [-1, 1] (ChebConv). The coefficients C are the
layer's parameters; the forward pass builds the kernel from them (an einsum with the separable basis, the Kronecker
product of the per-axis bases) and calls the ordinary convolution with the layer's stride, padding, dilation and
groups.

The coefficients are fitted to the trained kernel. ``fit="gd"`` (the paper's choice, it fine-tunes better):
Adam on each kernel's mean squared error (the paper's eq. 5; the kernels are independent), from the paper's
starting points (CosConv: N(0, 1/(C_in k^d)) with C_in the input channels per group; ChebConv: the constant term
at each kernel's mean, the rest zero), the learning rate decayed to zero along a cosine. ``fit="lstsq"``: the
closed form, the least-squares solution through the pseudo-inverse of the separable basis, exact when N = k or
when the kernel is itself such a series.

Optionally the coefficients are BFP at block size 1 (per-coefficient floating point, as the paper's quantisation
experiments) with ``coefficient_bits`` and ``exponent_bits``, straight-through when training, and the layer's
inputs too (``activations``). In evaluation (no gradient recorded) the kernel is built once and kept until the
coefficients change.

Storage: C_out C_in N^d coefficients at 32 bits, or at coefficient_bits + exponent_bits each when quantised (block
size 1: one exponent per coefficient); the bias at 32 bits.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn

from harness.compression import (FLOAT_BITS, CompressionReport, Layer, compress_layers, eligible_layers,
                                 parse_settings)
from harness.quantisation import bfp_quantise

from .common import (DerivedCache, LayerOp, bfp_activations, bias_bits, numel, quantise_ste, require_layers,
                     tracking)
from .series_config import FITS, SeriesConfig

CONV_TYPES = ("Conv1d", "Conv2d", "Conv3d")
COS_INTERVAL = (0.2 * math.pi, 0.8 * math.pi)


def cosine_basis(k: int, n: int) -> torch.Tensor:
    """[k, n] float64: cos(a x) for a = 0..n-1 at k equispaced points x in [0.2 pi, 0.8 pi]."""
    points = torch.linspace(*COS_INTERVAL, k, dtype=torch.float64)
    return torch.cos(points[:, None] * torch.arange(n, dtype=torch.float64))


def chebyshev_basis(k: int, n: int) -> torch.Tensor:
    """[k, n] float64: T_a(x) for a = 0..n-1 at k equispaced points x in [-1, 1] (the three-term recurrence)."""
    x = torch.linspace(-1.0, 1.0, k, dtype=torch.float64)
    terms = [torch.ones_like(x), x]
    while len(terms) < n:
        terms.append(2 * x * terms[-1] - terms[-2])
    return torch.stack(terms[:n], dim=1)


def cosine_init(weight: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """CosConv's starting coefficients: N(0, 1 / (C_in k^d)), C_in the input channels per group."""
    fan_in = math.prod(weight.shape[1:])
    return torch.randn(*shape, dtype=weight.dtype, device=weight.device) / math.sqrt(fan_in)


def chebyshev_init(weight: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """ChebConv's starting coefficients: the constant term at each kernel's mean, the higher terms zero."""
    coefficients = torch.zeros(*shape, dtype=weight.dtype, device=weight.device)
    constant = (slice(None), slice(None)) + (0,) * (len(shape) - 2)
    coefficients[constant] = weight.detach().flatten(2).mean(dim=-1)
    return coefficients


@dataclass(frozen=True)
class Family:
    name: str
    compressor: str
    basis: Callable[[int, int], torch.Tensor]
    init: Callable[[torch.Tensor, Sequence[int]], torch.Tensor]


COSINE = Family("cosine", "cosconv", cosine_basis, cosine_init)
CHEBYSHEV = Family("chebyshev", "chebconv", chebyshev_basis, chebyshev_init)


def separable_basis(family: Family, kernel: Sequence[int], harmonics: int) -> torch.Tensor:
    """[prod(k), N^d] float64: the Kronecker product of the per-axis bases, so that a kernel flattened row-major
    is this matrix times its coefficients flattened row-major: phi_a(x) phi_b(y) phi_c(z) at row (x, y, z) and
    column (a, b, c)."""
    basis = torch.ones(1, 1, dtype=torch.float64)
    for k in kernel:
        basis = torch.kron(basis, family.basis(k, harmonics))
    return basis


def series_kernel(coefficients: torch.Tensor, basis: torch.Tensor, kernel: Sequence[int]) -> torch.Tensor:
    """The kernels [O, I, *kernel] of ``coefficients`` [O, I, N...] with the separable ``basis`` [prod(k), N^d]."""
    flat = coefficients.reshape(-1, basis.shape[1])
    return torch.einsum("pn,kn->pk", flat, basis).reshape(*coefficients.shape[:2], *kernel)


def fit_lstsq(weight: torch.Tensor, basis: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Least-squares coefficients [shape] of the kernels ``weight`` [O, I, k...], through the pseudo-inverse of the
    separable basis (float64)."""
    flat = weight.detach().double().reshape(-1, basis.shape[0])
    return (flat @ torch.linalg.pinv(basis.double()).T).reshape(shape).to(weight.dtype)


def fit_gd(weight: torch.Tensor, basis: torch.Tensor, start: torch.Tensor, steps: int, lr: float,
           betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> torch.Tensor:
    """Coefficients from ``start`` by Adam on the squared error of each kernel, averaged over its k^d points (the
    paper's eq. 5) and summed over the kernels, which are independent; the learning rate decays to 0 along a
    cosine over the steps.

    The loss is quadratic, so its gradient, 2/k^d (C B^T B - W B) for flattened coefficients C, kernels W and the
    separable basis B, is one small matrix product (B^T B and W B precomputed), not autograd; the update is
    ``torch.optim.Adam``'s (same betas, eps, bias corrections) with ``CosineAnnealingLR``'s rate, written as a few
    in-place operations because a layer's fit takes hundreds of steps on small tensors."""
    basis = basis.to(weight.dtype)
    scale = 2 / basis.shape[0]
    gram = basis.T @ basis * scale
    projected = weight.detach().reshape(-1, basis.shape[0]) @ basis * scale
    coefficients = start.detach().reshape(-1, basis.shape[1]).clone()
    first, second = torch.zeros_like(coefficients), torch.zeros_like(coefficients)
    gradient = torch.empty_like(coefficients)
    beta1, beta2 = betas
    for step in range(1, steps + 1):
        rate = lr * (1 + math.cos(math.pi * (step - 1) / steps)) / 2
        torch.addmm(projected, coefficients, gram, beta=-1, out=gradient)
        first.mul_(beta1).add_(gradient, alpha=1 - beta1)
        second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        denominator = second.sqrt().div_(math.sqrt(1 - beta2 ** step)).add_(eps)
        coefficients.addcdiv_(first, denominator, value=-rate / (1 - beta1 ** step))
    return coefficients.reshape(start.shape)


class SeriesConv(nn.Module):
    """A Conv1d/2d/3d whose kernels are separable series; the coefficients (and the original bias) are its
    parameters."""

    def __init__(self, conv: nn.Module, harmonics: int, family: Family, fit: str = "gd", fit_steps: int = 500,
                 fit_lr: float = 0.01, coefficient_bits: int = 0, exponent_bits: int = 7,
                 activations: bool = True) -> None:
        super().__init__()
        self.op = LayerOp(conv)
        if self.op.linear:
            raise TypeError("series kernels replace convolutions, not Linear layers")
        kernel = tuple(conv.weight.shape[2:])
        if harmonics < 1 or harmonics > min(kernel):
            raise ValueError(f"{harmonics} harmonics for a kernel of size {'x'.join(map(str, kernel))}: "
                             "need 1 <= N <= the kernel size on every axis")
        if fit not in FITS:
            raise ValueError(f"fit={fit!r}: expected one of {FITS}")
        self.family, self.harmonics, self.kernel_size = family, harmonics, kernel
        self.coefficient_bits, self.exponent_bits = coefficient_bits, exponent_bits
        self.quantise_activations = activations and coefficient_bits > 0
        weight = conv.weight.detach()
        basis = separable_basis(family, kernel, harmonics).to(device=weight.device)
        shape = (*weight.shape[:2], *(harmonics,) * len(kernel))
        with torch.no_grad():
            if fit == "lstsq":
                coefficients = fit_lstsq(weight, basis, shape)
            else:
                coefficients = fit_gd(weight, basis, family.init(weight, shape), fit_steps, fit_lr)
        self.register_buffer("basis", basis.to(weight.dtype), persistent=False)
        self.coefficients = nn.Parameter(coefficients)
        self.bias = conv.bias
        self._kernel_cache = DerivedCache()

    def quantise(self, coefficients: torch.Tensor) -> torch.Tensor:
        return bfp_quantise(coefficients, self.coefficient_bits, block=1, exponent_bits=self.exponent_bits)

    def kernel(self) -> torch.Tensor:
        """The convolution kernel [O, I, k...] the coefficients (quantised, if so configured) describe."""
        coefficients = self.coefficients
        if not tracking(coefficients):
            return self._kernel_cache.get(coefficients, lambda: series_kernel(
                self.quantise(coefficients) if self.coefficient_bits else coefficients, self.basis, self.kernel_size))
        if self.coefficient_bits:
            coefficients = quantise_ste(coefficients, self.quantise)
        return series_kernel(coefficients, self.basis, self.kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quantise_activations:
            x = bfp_activations(x, self.coefficient_bits, 1, 1, self.exponent_bits)
        return self.op(x, self.kernel(), self.bias)

    def stored_parameters(self) -> int:
        return self.coefficients.numel() + numel(self.bias)

    def stored_bits(self) -> int:
        each = self.coefficient_bits + self.exponent_bits if self.coefficient_bits else FLOAT_BITS
        return self.coefficients.numel() * each + bias_bits(self.bias)

    def extra_repr(self) -> str:
        quantised = f", coefficient_bits={self.coefficient_bits}" if self.coefficient_bits else ""
        return (f"{self.op.describe()}, kernel={self.kernel_size}, {self.family.name} series, "
                f"harmonics={self.harmonics}{quantised}")


def series_layers(model: nn.Module) -> list[Layer]:
    """The convolutions a series can replace: kernel size above 1 on every axis."""
    return eligible_layers(model, CONV_TYPES, accept=lambda conv: min(conv.weight.shape[2:]) > 1)


@dataclass
class SeriesCompressor:
    config: SeriesConfig
    family: Family

    def __post_init__(self) -> None:
        self.settings = parse_settings(self.config.harmonics, "harmonics")

    def compress(self, model: nn.Module) -> CompressionReport:
        config = self.config
        layers = series_layers(model)
        require_layers(layers, model, self.family.compressor,
                       "Conv1d/2d/3d layers with a kernel size above 1 on every axis")
        harmonics = self.settings.assign(layers, "harmonics")
        for layer in layers:
            kernel = tuple(layer.module.weight.shape[2:])
            if harmonics[layer.name] > min(kernel):
                raise ValueError(f"harmonics={config.harmonics!r}: layer {layer.name} ({type(layer.module).__name__}, "
                                 f"kernel {'x'.join(map(str, kernel))}) gets {harmonics[layer.name]} harmonics, "
                                 f"more than its kernel size")
        return compress_layers(model, layers, harmonics, lambda conv, n: SeriesConv(
            conv, n, self.family, fit=config.fit, fit_steps=config.fit_steps, fit_lr=config.fit_lr,
            coefficient_bits=config.coefficient_bits, exponent_bits=config.exponent_bits,
            activations=config.activations))


def build_cosconv(config: SeriesConfig) -> SeriesCompressor:
    return SeriesCompressor(config, COSINE)


def build_chebconv(config: SeriesConfig) -> SeriesCompressor:
    return SeriesCompressor(config, CHEBYSHEV)
