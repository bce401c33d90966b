"""Torch implementation of R3D-18 (written here from Tran et al. 2018, Table 1 and Section 3.1).

Every convolution is 3D. The stem, conv1, has 64 filters of 3x7x7 (time x height x width) with stride (1, 2, 2)
and no pooling after it; conv2_x..conv5_x are four stages of two basic residual blocks (two 3x3x3 convolutions
each) with 64, 128, 256 and 512 filters; conv3_1, conv4_1 and conv5_1 subsample by 2 in time, height and width,
and their shortcut is a 1x1x1 convolution with the same stride and a BN (elsewhere the identity). Every
convolution is followed by BN; a global spatiotemporal average pool gives the 512-d feature.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from ..input_shapes import input_shape
from ..residual import BasicBlock, he_initialise
from ..standardise import Standardise
from . import R3DConfig

NAME = "r3d"
STAGE_STRIDES = (1, 2, 2, 2)
BLOCKS_PER_STAGE = 2


class R3D18(nn.Module):
    """Clips [B, C, T, H, W] -> pooled features [B, 8 * base_width].

    Child modules in forward order: ``conv1``/``bn1`` (stem), ``layer1``..``layer4`` (stages, each an
    ``nn.Sequential`` of two blocks), ``pool``. The compression blocks are the stem conv and the four stages.
    """

    compression_blocks = ("conv1", "layer1", "layer2", "layer3", "layer4")

    def __init__(self, in_channels: int = 3, base_width: int = 64, standardise: bool = False) -> None:
        super().__init__()
        self.standardise = Standardise() if standardise else nn.Identity()
        self.conv1 = nn.Conv3d(in_channels, base_width, (3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3),
                               bias=False)
        self.bn1 = nn.BatchNorm3d(base_width)
        self.relu = nn.ReLU(inplace=True)
        channels = base_width
        for stage, stride in enumerate(STAGE_STRIDES, start=1):
            width = base_width * 2 ** (stage - 1)
            blocks = [BasicBlock(channels if b == 0 else width, width, stride if b == 0 else 1, dims=3)
                      for b in range(BLOCKS_PER_STAGE)]
            self.add_module(f"layer{stage}", nn.Sequential(*blocks))
            channels = width
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.out_channels = channels
        self.encoding = EncodingInfo(kind="global", dim=channels)
        he_initialise(self)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(self.standardise(clips))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.pool(x).flatten(1)


def build(config: R3DConfig, info: DatasetInfo | None) -> R3D18:
    """Encoder factory; the stem takes the dataset's clip channels (``info.input_shapes["video"]``, [C, T, H, W];
    3 when the dataset does not say)."""
    channels = input_shape(info, "video", (3, 16, 112, 112), NAME)[0]
    return R3D18(in_channels=channels, base_width=config.base_width, standardise=config.standardise)
