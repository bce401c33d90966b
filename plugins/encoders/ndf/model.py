"""NDF / IF-Net encoder in PyTorch, written from Chibane et al. (IF-Net, CVPR 2020; NDF, NeurIPS 2020).

Input: a cloud [B, N, 3] in the unit cube. It is voxelised to a binary occupancy grid of R^3 nodes: each point
marks the grid node nearest to it (NDF's input encoding; counts per voxel become 1). The CNN (paper sizes):

    stage 1: Conv3d(1, 16, 3)+ReLU, BN                        at R      -> volume 1
    stage s: MaxPool(2), Conv3d(c, c_s, 3)+ReLU, Conv3d(c_s, c_s, 3)+ReLU, BN   at R / 2^(s-1) -> volume s

with c_s = 16, 32, 64, 128, 128, 128 (the first stage has a single convolution, as the published network;
every later stage two), padding 1. The encoding is the list [input grid, volume 1, ..., volume S]
(:class:`~.sampling.FeatureVolumes`); read it at query points with :func:`~.sampling.sample_features`, which
gives 7 x (1 + sum c_s) features per point (3,479 at paper sizes).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from . import DISPLACEMENT, HALF_EXTENT, NDFConfig, feature_dim
from .sampling import FeatureVolumes, sample_features  # noqa: F401  (re-exported for decoders)

NAME = "ndf"


def voxelise(points: torch.Tensor, resolution: int, half_extent: float = HALF_EXTENT) -> torch.Tensor:
    """Binary occupancy grids [B, 1, R, R, R] (axes z, y, x) of clouds [B, N, 3]: 1 at the node nearest to
    any point (points outside the cube mark the nearest border node)."""
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"{NAME}: expected points [B, N, 3], got {list(points.shape)}")
    batch = points.shape[0]
    r = int(resolution)
    with torch.no_grad():
        idx = torch.round((points + half_extent) * ((r - 1) / (2.0 * half_extent))).long().clamp_(0, r - 1)
        flat = (idx[..., 2] * r + idx[..., 1]) * r + idx[..., 0]  # z-major: (D, H, W) = (z, y, x)
        grid = torch.zeros(batch, r * r * r, dtype=points.dtype, device=points.device)
        grid.scatter_(1, flat, 1.0)
    return grid.view(batch, 1, r, r, r)


class NDFEncoder(nn.Module):
    """Cloud [B, N, 3] -> :class:`FeatureVolumes` [input grid [B, 1, R^3], stage volumes [B, c_s, (R/2^(s-1))^3]].

    ``forward_grid`` takes an occupancy grid [B, 1, R, R, R] directly."""

    def __init__(self, resolution: int = 256, channels: Sequence[int] = (16, 32, 64, 128, 128, 128),
                 displacement: float = DISPLACEMENT, half_extent: float = HALF_EXTENT) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        if not channels or min(channels) < 1:
            raise ValueError(f"{NAME}: channels {channels} must be a non-empty list of positive widths")
        if resolution < 2 ** (len(channels) - 1) or resolution < 2:
            raise ValueError(f"{NAME}: a {resolution}^3 grid is too small for {len(channels)} stages (max-pooling "
                             f"halves it {len(channels) - 1} times); use at least {max(2, 2 ** (len(channels) - 1))}")
        self.resolution, self.channels = int(resolution), channels
        self.displacement, self.half_extent = float(displacement), float(half_extent)
        self.stages = nn.ModuleList()
        c_in = 1
        for s, c in enumerate(channels):
            layers: list[nn.Module] = [] if s == 0 else [nn.MaxPool3d(2)]
            layers += [nn.Conv3d(c_in, c, 3, padding=1), nn.ReLU(inplace=True)]
            if s > 0:
                layers += [nn.Conv3d(c, c, 3, padding=1), nn.ReLU(inplace=True)]
            layers.append(nn.BatchNorm3d(c))
            self.stages.append(nn.Sequential(*layers))
            c_in = c
        self.encoding = EncodingInfo(kind="grid", dim=feature_dim(channels))

    def volume_sizes(self) -> list[int]:
        """Side of every volume of the encoding, input grid first."""
        sizes, r = [self.resolution], self.resolution
        for s in range(len(self.channels)):
            r = r if s == 0 else r // 2
            sizes.append(r)
        return sizes

    def forward_grid(self, grid: torch.Tensor) -> FeatureVolumes:
        volumes = FeatureVolumes([grid], self.displacement, self.half_extent)
        x = grid
        for stage in self.stages:
            x = stage(x)
            volumes.append(x)
        return volumes

    def forward(self, points: torch.Tensor) -> FeatureVolumes:
        return self.forward_grid(voxelise(points, self.resolution, self.half_extent))



def build(config: NDFConfig, info: DatasetInfo | None) -> NDFEncoder:
    """Encoder factory; the architecture does not depend on the dataset (its clouds are in the unit cube)."""
    return NDFEncoder(config.resolution, list(config.channels), config.displacement, config.half_extent)
