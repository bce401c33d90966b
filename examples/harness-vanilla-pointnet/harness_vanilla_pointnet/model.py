"""The PointNet global encoder: per-point MLP (1x1 convolutions with batch norm), max-pool, linear to the code."""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from . import VanillaPointNetConfig


class VanillaPointNet(nn.Module):
    def __init__(self, widths: list[int], code_size: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = 3
        for width in widths:
            layers += [nn.Conv1d(previous, width, 1), nn.BatchNorm1d(width), nn.ReLU()]
            previous = width
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(previous, code_size)
        self.encoding = EncodingInfo(kind="global", dim=code_size)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """points [B, N, 3] -> code [B, code_size]; the max-pool makes it order-invariant."""
        return self.head(self.mlp(points.transpose(1, 2)).max(dim=2).values)


def build(config: VanillaPointNetConfig, info: DatasetInfo) -> VanillaPointNet:
    return VanillaPointNet(list(config.widths), config.code_size)
