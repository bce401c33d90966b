"""What the residual encoders share: the basic residual block of ResNet-18 and R3D-18, in 2D or 3D (two 3x3(x3)
conv + BN layers around a shortcut, the identity or, where the shape changes, a strided 1x1(x1) conv + BN projection,
option B), and He et al.'s initialisation."""
from __future__ import annotations

import torch
from torch import nn

LAYERS = {2: (nn.Conv2d, nn.BatchNorm2d), 3: (nn.Conv3d, nn.BatchNorm3d)}


class BasicBlock(nn.Module):
    def __init__(self, channels_in: int, channels_out: int, stride: int, dims: int = 2) -> None:
        super().__init__()
        conv, norm = LAYERS[dims]
        self.conv1 = conv(channels_in, channels_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = norm(channels_out)
        self.conv2 = conv(channels_out, channels_out, 3, padding=1, bias=False)
        self.bn2 = norm(channels_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or channels_in != channels_out:
            self.downsample = nn.Sequential(conv(channels_in, channels_out, 1, stride=stride, bias=False),
                                            norm(channels_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


def he_initialise(model: nn.Module) -> None:
    """He et al. 2015 for every 2D and 3D convolution (zero-mean Gaussian, std sqrt(2 / fan-out)); every batch norm
    starts as the identity (weight 1, bias 0)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
