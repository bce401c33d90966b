"""Torch implementation of the CIFAR ResNets (written here from He et al. 2016, Section 4.2).

The network: a 3x3 convolution with 16 filters (+ BN + ReLU) on the image, then three stages of n basic blocks
on feature maps of 32, 16 and 8 pixels (for a 32x32 input) with 16, 32 and 64 filters; the first block of
stages 2 and 3 subsamples by a stride of 2. Shortcuts are option A of the paper: the identity, and where a
block halves the resolution and doubles the width, the input subsampled by 2 with zero channels appended, so
the shortcuts add no parameters (ResNet-20 and a 10-class linear head: 269,722 parameters, counting the
batch-norm scales and shifts, the paper's "0.27M"; the 272,474 sometimes quoted is option B, with 1x1 conv + BN
projections in stages 2 and 3). A global average pool gives the 64-d feature. Weights are initialised as in He et al. 2015 ("Delving deep into rectifiers").
"""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from ..input_shapes import input_shape
from ..residual import he_initialise
from ..standardise import Standardise
from . import ResNetCifarConfig

NAME = "resnet_cifar"
STAGES = 3


def blocks_per_stage(depth: int) -> int:
    """n for a depth of 6n + 2 (each of the 3n blocks has two weighted layers; plus the stem and the head)."""
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"{NAME}: depth={depth} is not a CIFAR ResNet depth; it must be 6n+2 with n >= 1 "
                         "(8, 14, 20, 26, 32, 44, 56, 110, ...)")
    return (depth - 2) // 6


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: keep every ``stride``-th pixel along each spatial axis and append zero channels up to
    ``channels_out`` (the input's channels come first, unchanged). No parameters."""

    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        if channels_out < channels_in:
            raise ValueError(f"option-A shortcut cannot reduce {channels_in} channels to {channels_out}")
        self.extra = channels_out - channels_in
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.extra:
            zeros = x.new_zeros(x.shape[0], self.extra, *x.shape[2:])
            x = torch.cat([x, zeros], dim=1)
        return x


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN layers with a ReLU between, added to the shortcut, then a ReLU."""

    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = (ZeroPadShortcut(channels_in, channels_out, stride)
                         if stride != 1 or channels_in != channels_out else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """Images [B, C, H, W] (any size; 32x32 in the paper) -> pooled features [B, 4 * base_width].

    Child modules in forward order: ``conv1``/``bn1`` (stem), ``layer1``..``layer3`` (stages, each an
    ``nn.Sequential`` of BasicBlocks), ``pool``. The compression blocks are the stem conv and the three stages.
    """

    compression_blocks = ("conv1", "layer1", "layer2", "layer3")

    def __init__(self, depth: int = 20, in_channels: int = 3, base_width: int = 16, standardise: bool = False) -> None:
        super().__init__()
        n = blocks_per_stage(depth)
        self.depth = depth
        self.standardise = Standardise() if standardise else nn.Identity()
        self.conv1 = nn.Conv2d(in_channels, base_width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(base_width)
        self.relu = nn.ReLU(inplace=True)
        channels = base_width
        for stage in range(1, STAGES + 1):
            width = base_width * 2 ** (stage - 1)
            stride = 1 if stage == 1 else 2
            blocks = [BasicBlock(channels if b == 0 else width, width, stride if b == 0 else 1) for b in range(n)]
            self.add_module(f"layer{stage}", nn.Sequential(*blocks))
            channels = width
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_channels = channels
        self.encoding = EncodingInfo(kind="global", dim=channels)
        he_initialise(self)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.standardise(images))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.pool(x).flatten(1)


def build(config: ResNetCifarConfig, info: DatasetInfo | None) -> ResNetCifar:
    """Encoder factory; the stem takes the dataset's image channels (``info.input_shapes["image"]``, 3 when
    the dataset does not say)."""
    channels, _, _ = input_shape(info, "image", (3, 32, 32), NAME)
    return ResNetCifar(depth=config.depth, in_channels=channels, base_width=config.base_width,
                       standardise=config.standardise)
