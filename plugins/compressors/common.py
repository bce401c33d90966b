"""What the compressed layers share: the original layer's operation with another weight, the quantisation of a
tensor with straight-through gradients, and a cache of what is derived from a weight for evaluation."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import nn
from torch.nn import functional as F

from harness.compression import FLOAT_BITS
from harness.quantisation import bfp_quantise, straight_through

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class LayerOp:
    """The operation of a Conv1d/2d/3d or Linear layer (stride, padding incl. padding modes, dilation, groups)
    applied with any weight and bias: what ``layer(x)`` computes with ``layer.weight`` replaced."""

    def __init__(self, layer: nn.Module) -> None:
        self.kind = type(layer).__name__
        self.linear = isinstance(layer, nn.Linear)
        if not self.linear:
            if not isinstance(layer, nn.modules.conv._ConvNd) or getattr(layer, "transposed", False):
                raise TypeError(f"{self.kind}: expected Conv1d/2d/3d or Linear")
            self.dims = layer.weight.dim() - 2
            self.stride, self.padding, self.dilation = layer.stride, layer.padding, layer.dilation
            self.groups, self.padding_mode = layer.groups, layer.padding_mode
            self.reversed_padding = getattr(layer, "_reversed_padding_repeated_twice", None)

    @property
    def channel_axis(self) -> int:
        """The axis of the input that holds its channels: [..., C] for Linear, [B, C, ...] for a conv."""
        return -1 if self.linear else 1

    def __call__(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if self.linear:
            return F.linear(x, weight, bias)
        conv = _CONV[self.dims]
        if self.padding_mode != "zeros":
            x = F.pad(x, self.reversed_padding, mode=self.padding_mode)
            return conv(x, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(x, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def describe(self) -> str:
        if self.linear:
            return self.kind
        return f"{self.kind}(stride={self.stride}, padding={self.padding}, groups={self.groups})"


class DerivedCache:
    """A tensor derived from a source tensor (a quantised weight, a series kernel), kept while the source is the
    same tensor with the same contents: same object, storage and version counter (in-place updates such as an
    optimiser step or ``load_state_dict`` bump it; writes through ``.data`` do not, so call ``clear`` after those).
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.source: torch.Tensor | None = None
        self.key: tuple[Any, ...] = ()
        self.value: torch.Tensor | None = None

    def get(self, source: torch.Tensor, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        key = (source._version, source.data_ptr(), source.dtype, source.device, tuple(source.shape))
        if self.source is not source or self.key != key or self.value is None:
            with torch.no_grad():
                self.value = compute()
            self.source, self.key = source, key
        return self.value

    def __deepcopy__(self, memo: dict) -> "DerivedCache":
        return DerivedCache()  # a copy recomputes (and never pins the original's tensors)


def tracking(tensor: torch.Tensor) -> bool:
    """Whether gradients are being recorded for ``tensor`` (training): then quantise with STE, no cache."""
    return torch.is_grad_enabled() and tensor.requires_grad


def quantise_ste(x: torch.Tensor, quantise: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """``quantise(x)`` forward; with gradients recorded, the identity's gradient backward (STE)."""
    with torch.no_grad():
        quantised = quantise(x.detach())
    return straight_through(x, quantised) if tracking(x) else quantised


def bfp_activations(x: torch.Tensor, bits: int, block: int, axis: int, exponent_bits: int = 7,
                    rounding: str = "even") -> torch.Tensor:
    """BFP of a layer's input along its channel axis, with STE."""
    return quantise_ste(x, lambda value: bfp_quantise(value, bits, block=block, axis=axis,
                                                      exponent_bits=exponent_bits, rounding=rounding))


class QuantisedLayer(nn.Module):
    """A Conv1d/2d/3d or Linear layer computing with quantised weights (and, where a subclass says so, quantised
    inputs). Its parameters are the original float weight and bias (the same tensors), which training keeps
    updating through the STE; in evaluation the quantised weight is computed once and kept until the weight
    changes. Subclasses define ``quantise`` (the weight) and ``quantise_input``, and their storage."""

    def __init__(self, layer: nn.Module, bits: int, block: int) -> None:
        super().__init__()
        self.op = LayerOp(layer)
        self.weight, self.bias = layer.weight, layer.bias
        self.bits, self.block = bits, block
        self._weight_cache = DerivedCache()

    def quantise(self, weight: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def quantise_input(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def effective_weight(self) -> torch.Tensor:
        if tracking(self.weight):
            return quantise_ste(self.weight, self.quantise)
        return self._weight_cache.get(self.weight, lambda: self.quantise(self.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self.quantise_input(x), self.effective_weight(), self.bias)

    def weight_blocks(self) -> int:
        """Blocks of ``block`` input channels, one row per (output channel, kernel position)."""
        rows = self.weight.numel() // self.weight.shape[1]
        return rows * math.ceil(self.weight.shape[1] / self.block)

    def stored_parameters(self) -> int:
        return self.weight.numel() + numel(self.bias)


def require_layers(layers: list, model: nn.Module, compressor: str, looked_for: str) -> None:
    """Compressing nothing would report a compressed model that is the original: an error instead."""
    if not layers:
        raise ValueError(f"{compressor}: {type(model).__name__} has no layers to compress ({looked_for})")


def bias_bits(bias: torch.Tensor | None) -> int:
    return 0 if bias is None else bias.numel() * FLOAT_BITS


def numel(tensor: torch.Tensor | None) -> int:
    return 0 if tensor is None else tensor.numel()
