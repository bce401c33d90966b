"""Torch implementation of the 3D ShapeNets convolutional network as a discriminative classifier (written here
from Wu et al. 2015, Section 3, and the thesis's description of the network it quantised).

Wu et al.: "The first layer has 48 filters of size 6 and stride 2; the second layer has 160 filters of size 5 and
stride 2; the third layer has 512 filters of size 4; ... the fourth layer is a standard fully connected RBM with
1200 hidden units; and the fifth and final layer with 4000 hidden units takes as input a combination of
multinomial label variables and Bernoulli feature variables", on 30^3 grids (24^3 shapes padded by 3), trained
as a convolutional deep belief network.

Where the thesis (Section 3.3.2) differs, it is followed: it describes the network as "3 convolutional layers
(32^3 -> 2^3) and three linear layers", trained as a classifier on ModelNet40. So here:

- the input is the 32^3 grid itself (32 -> 14 -> 5 -> 2 per axis; a 30^3 grid gives 13 -> 5 -> 2, also 2^3);
- three linear layers: 512 * 2^3 = 4096 -> 1200 -> 4000 -> classes; the first two are this encoder (its
  feature is the 4000-d output; ``hidden2=0`` stops at the 1200-d layer), the last is the ``classifier`` decoder;
- ReLU after every convolution and hidden layer (the CDBN's sigmoid units and its generative pre-training are
  not reproduced: plain back-propagation from He initialisation); no pooling, no batch norm, no dropout.

The thesis's Table 3.3 confirms the convolution sizes: 198,824 kb at 32 bits is exactly the 6,213,248 weights of
the three convolutions (1*48*6^3 + 48*160*5^3 + 160*512*4^3) — only those were quantised there.
"""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from ..input_shapes import input_shape
from . import ShapeNetsCNNConfig

NAME = "shapenets_cnn"
KERNELS = (6, 5, 4)
STRIDES = (2, 2, 1)


def feature_size(resolution: int) -> int:
    """Side of the last convolution's output for an input side (valid convolutions, no padding)."""
    for kernel, stride in zip(KERNELS, STRIDES):
        resolution = (resolution - kernel) // stride + 1
    return resolution


class ShapeNetsCNN(nn.Module):
    """Grids [B, C, D, H, W] -> features [B, hidden2 or hidden1].

    Child modules in forward order: ``conv1``..``conv3``, ``fc1``, ``fc2`` (an identity when hidden2=0), with their
    ReLUs; each conv/linear layer is a compression block of its own.
    """

    compression_blocks = ("conv1", "conv2", "conv3", "fc1", "fc2")

    def __init__(self, grid: tuple[int, int, int] = (32, 32, 32), in_channels: int = 1,
                 filters: tuple[int, int, int] = (48, 160, 512), hidden1: int = 1200, hidden2: int = 4000) -> None:
        super().__init__()
        sizes = tuple(feature_size(side) for side in grid)
        if min(sizes) < 1:
            raise ValueError(f"{NAME}: a {'x'.join(map(str, grid))} grid is too small; every side must be at "
                             "least 26 voxels (30 or 32 in the papers)")
        if hidden1 < 1 or hidden2 < 0:
            raise ValueError(f"{NAME}: hidden1={hidden1} must be >= 1 and hidden2={hidden2} >= 0 (0: no second "
                             "fully connected layer)")
        channels = in_channels
        for index, (width, kernel, stride) in enumerate(zip(filters, KERNELS, STRIDES), start=1):
            self.add_module(f"conv{index}", nn.Conv3d(channels, width, kernel, stride=stride))
            self.add_module(f"act{index}", nn.ReLU(inplace=True))
            channels = width
        self.fc1 = nn.Linear(channels * sizes[0] * sizes[1] * sizes[2], hidden1)
        self.act4 = nn.ReLU(inplace=True)
        # with hidden2=0 the block ``fc2`` is still there, as an identity, so the declared blocks always exist
        self.fc2 = nn.Linear(hidden1, hidden2) if hidden2 else nn.Identity()
        self.act5 = nn.ReLU(inplace=True) if hidden2 else nn.Identity()
        self.feature_grid = sizes
        self.encoding = EncodingInfo(kind="global", dim=hidden2 or hidden1)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, grids: torch.Tensor) -> torch.Tensor:
        x = self.act3(self.conv3(self.act2(self.conv2(self.act1(self.conv1(grids))))))
        return self.act5(self.fc2(self.act4(self.fc1(x.flatten(1)))))


def build(config: ShapeNetsCNNConfig, info: DatasetInfo | None) -> ShapeNetsCNN:
    """Encoder factory; sized from the dataset's grid (``info.input_shapes["voxels"]``, [C, D, H, W]; 1x32^3
    when the dataset does not say)."""
    channels, *grid = input_shape(info, "voxels", (1, 32, 32, 32), NAME)
    filters = (config.filters1, config.filters2, config.filters3)
    return ShapeNetsCNN(tuple(grid), channels, filters, config.hidden1, config.hidden2)
