"""Torch implementation of the Occupancy Networks ResNet-PointNet encoder."""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from . import PointNetConfig


class ResnetBlockFC(nn.Module):
    """Pre-activation residual MLP block; fc_1 starts at zero so the block begins near the identity path."""

    def __init__(self, size_in: int, size_out: int, size_h: int | None = None) -> None:
        super().__init__()
        size_h = min(size_in, size_out) if size_h is None else size_h
        self.fc_0 = nn.Linear(size_in, size_h)
        self.fc_1 = nn.Linear(size_h, size_out)
        self.actvn = nn.ReLU()
        # A learned projection only where the widths differ, as in the original.
        self.shortcut = nn.Linear(size_in, size_out, bias=False) if size_in != size_out else None
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net = self.fc_0(self.actvn(x))
        dx = self.fc_1(self.actvn(net))
        x_s = x if self.shortcut is None else self.shortcut(x)
        return x_s + dx


class ResnetPointNet(nn.Module):
    """Point cloud [B, N, 3] -> global code [B, c]; symmetric in the points thanks to max-pooling."""

    NUM_BLOCKS = 5

    def __init__(self, hidden: int = 512, code_size: int = 512, dim: int = 3) -> None:
        super().__init__()
        self.fc_pos = nn.Linear(dim, 2 * hidden)
        # Every block sees its own features concatenated with their max-pool: 2h in, h out.
        self.blocks = nn.ModuleList(ResnetBlockFC(2 * hidden, hidden) for _ in range(self.NUM_BLOCKS))
        self.fc_c = nn.Linear(hidden, code_size)
        self.actvn = nn.ReLU()
        self.encoding = EncodingInfo(kind="global", dim=code_size)

    def encode_points(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(per-point features [B, N, h] of the first block, global code [B, c]).

        The first block's features are the local ones PointNet's segmentation network pairs with the global code:
        every later block mixes in the max-pool, and at initialisation the last block's features vary across the
        points of a cloud about 40 times less than the first's (std 0.002 against 0.09 at hidden 64), too little
        for a per-point head to tell the points apart (the segmentation baseline stayed at its floor on one seed).
        """
        local = self.blocks[0](self.fc_pos(points))
        net = local
        for block in self.blocks[1:]:
            pooled = net.max(dim=1, keepdim=True).values.expand_as(net)
            net = block(torch.cat([net, pooled], dim=2))
        return local, self.fc_c(self.actvn(net.max(dim=1).values))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        return self.encode_points(points)[1]


def build(config: PointNetConfig, info: DatasetInfo) -> ResnetPointNet:
    """Encoder factory; ``info`` is part of the contract but the architecture does not depend on it."""
    return ResnetPointNet(hidden=config.hidden, code_size=config.code_size)


class PerPointResnetPointNet(nn.Module):
    """The same network serving per-point tasks, as PointNet's segmentation network does: each point's local
    (first-block) features concatenated with the global code, as a ``points`` encoding (xyz [B, N, 3],
    features [B, N, h + c])."""

    def __init__(self, hidden: int = 512, code_size: int = 512) -> None:
        super().__init__()
        self.net = ResnetPointNet(hidden=hidden, code_size=code_size)
        self.encoding = EncodingInfo(kind="points", dim=hidden + code_size)

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        local, code = self.net.encode_points(points)
        return points, torch.cat([local, code.unsqueeze(1).expand(-1, local.shape[1], -1)], dim=2)


def build_per_point(config: PointNetConfig, info: DatasetInfo) -> PerPointResnetPointNet:
    return PerPointResnetPointNet(hidden=config.hidden, code_size=config.code_size)
