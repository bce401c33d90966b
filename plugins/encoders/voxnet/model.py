"""Torch implementation of VoxNet (written here from Maturana & Scherer 2015, Section III-D).

C(32, 5, 2) - C(32, 3, 1) - P(2) - FC(128) - FC(K) on a 32^3 occupancy grid: a 5^3 convolution with stride 2
(32^3 -> 14^3), a 3^3 convolution (-> 12^3), both with leaky ReLUs of slope 0.1, a 2^3 max pool (-> 6^3), and a
fully connected layer of 128 units with a ReLU; dropout 0.2, 0.3 and 0.4 after the first convolution, the pool and
the hidden layer. The last FC(K) is the ``classifier`` decoder. This matches the thesis's description of the
network it quantised (two convolutions "reducing from 32^3 to 6^3", then two linear layers; its Table 3.3 sizes,
1,013 kb at 32 bits, are the 31,648 weights of the two convolutions). Convolutions are initialised as in He et
al. 2015 and the fully connected layer with a Gaussian of std 0.01, as the paper says.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from ..input_shapes import input_shape
from . import VoxNetConfig

NAME = "voxnet"
SLOPE = 0.1


def feature_size(resolution: int) -> int:
    """Side of the pooled feature grid for an input side: conv 5 stride 2, conv 3, pool 2."""
    return ((resolution - 5) // 2 + 1 - 2) // 2


class VoxNet(nn.Module):
    """Grids [B, C, D, H, W] -> features [B, hidden].

    Child modules in forward order: ``conv1``, ``conv2``, ``pool``, ``fc1`` (plus activations and dropouts);
    each conv/linear layer is a compression block of its own.
    """

    compression_blocks = ("conv1", "conv2", "fc1")

    def __init__(self, grid: tuple[int, int, int] = (32, 32, 32), in_channels: int = 1, filters: int = 32,
                 hidden: int = 128, dropout: bool = True) -> None:
        super().__init__()
        sizes = tuple(feature_size(side) for side in grid)
        if min(sizes) < 1:
            raise ValueError(f"{NAME}: a {'x'.join(map(str, grid))} grid is too small; every side must be at "
                             "least 11 voxels (32 in the paper)")
        rates = (0.2, 0.3, 0.4) if dropout else (0.0, 0.0, 0.0)
        self.conv1 = nn.Conv3d(in_channels, filters, 5, stride=2)
        self.act1 = nn.LeakyReLU(SLOPE)
        self.drop1 = nn.Dropout(rates[0])
        self.conv2 = nn.Conv3d(filters, filters, 3)
        self.act2 = nn.LeakyReLU(SLOPE)
        self.pool = nn.MaxPool3d(2)
        self.drop2 = nn.Dropout(rates[1])
        self.fc1 = nn.Linear(filters * sizes[0] * sizes[1] * sizes[2], hidden)
        self.act3 = nn.ReLU()
        self.drop3 = nn.Dropout(rates[2])
        self.feature_grid = sizes
        self.encoding = EncodingInfo(kind="global", dim=hidden)
        self._init_weights()

    def _init_weights(self) -> None:
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight, a=SLOPE, nonlinearity="leaky_relu")
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.fc1.weight, std=0.01)
        nn.init.zeros_(self.fc1.bias)

    def forward(self, grids: torch.Tensor) -> torch.Tensor:
        x = self.drop1(self.act1(self.conv1(grids)))
        x = self.drop2(self.pool(self.act2(self.conv2(x))))
        return self.drop3(self.act3(self.fc1(x.flatten(1))))


def build(config: VoxNetConfig, info: DatasetInfo | None) -> VoxNet:
    """Encoder factory; sized from the dataset's grid (``info.input_shapes["voxels"]``, [C, D, H, W]; 1x32^3
    when the dataset does not say)."""
    channels, *grid = input_shape(info, "voxels", (1, 32, 32, 32), NAME)
    return VoxNet(tuple(grid), channels, config.filters, config.hidden, config.dropout)
