"""Point Transformer (v1) segmentation U-Net in plain PyTorch, written from Zhao et al., ICCV 2021.

Batched clouds of equal size: coordinates ``xyz`` [B, N, 3] and features [B, N, C]. kNN and farthest point
sampling come from :mod:`harness.pointops` (chunked, spatially pruned and exact, vectorised; ``dense_knn=True``
switches every kNN to the all-pairs distance matrix, the reference the benchmark compares against). The
neighbourhoods of a level are searched once and shared by its encoder and decoder blocks.

Building blocks (Section 3 and Figure 4 of the paper):

- :class:`PointTransformerLayer` - vector self-attention over each point's ``k`` nearest neighbours (itself
  included)::

      delta_ij = theta(p_j - p_i)                     theta: Linear(3,3)+BN+ReLU+Linear(3,C)
      w_ij     = softmax_j( gamma(k_j - q_i + delta_ij) )   gamma: Linear(C,C/s)+BN+ReLU+Linear(C/s,C/s)
      y_i      = sum_j w_ij (.) (v_j + delta_ij)

  with q, k, v linear maps of the features and ``s = share_planes``: the C/s attention weights are shared by
  ``s`` groups of channels (channel ``g*C/s + c`` uses weight ``c``).
- :class:`PointTransformerBlock` - residual bottleneck: Linear+BN+ReLU, attention+BN+ReLU, Linear+BN, plus the
  input, ReLU.
- :class:`TransitionDown` - stride 1: Linear+BN+ReLU per point; stride s > 1: N//s points by farthest point
  sampling, each gathers its k nearest input points' ``[p_j - p_i, f_j]``, Linear+BN+ReLU, max over the k.
- :class:`TransitionUp` - Linear+BN+ReLU of the coarse features, 3-nearest-neighbour inverse-distance
  interpolation to the finer points, plus Linear+BN+ReLU of the skip features of that level. The coarsest
  decoder level has nothing coarser to take: its "transition up" mixes every point's features with a global
  context, Linear+BN+ReLU of ``[f_i, ReLU(Linear(mean_i f_i))]`` (as the published network does; this is
  where about 0.79M of its ~7.8M parameters sit; ``global_context=False`` drops it).

:class:`PointTransformerUNet` stacks them: encoder stage i = TransitionDown(stride_i) + blocks_i blocks at width
channels_i with k = neighbours_i; decoder stages from the coarsest back to full resolution, each a transition up
plus ``decoder_blocks`` blocks. Its output is the finest decoder level: features [B, N, channels[0]].
At the paper's sizes (channels 32-64-128-256-512, blocks 1-2-3-5-2, 3 input channels) it has 7,756,932
parameters; the contextualiser's shrunk version (channels 32-32-64-64-128, one block per stage) ~0.38M.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from harness import pointops
from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from . import PointTransformerConfig

NAME = "point_transformer"


class PointBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the last axis of [..., C] tensors (statistics over every point/neighbour in the batch)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


def linear_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(c_in, c_out, bias=False), PointBatchNorm(c_out), nn.ReLU(inplace=True))


class KnnSettings:
    """How a network's kNN searches run, shared by all its modules (so one switch changes them all):
    ``dense`` (the all-pairs distance matrix, the benchmark's reference), else ``chunk`` queries at a time
    with spatial pruning over blocks of ``block`` points (``None``: no pruning); see :mod:`harness.pointops`."""

    def __init__(self, dense: bool = False, chunk: int = pointops.KNN_CHUNK,
                 block: int | None = pointops.KNN_BLOCK) -> None:
        if int(chunk) < 1:
            raise ValueError(f"{NAME}: knn chunk must be >= 1, got {chunk}")
        self.dense, self.chunk, self.block = bool(dense), int(chunk), block

    def indices(self, query: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
        return pointops.knn_indices(query, points, k, None if self.dense else self.chunk, self.block)

    def interpolate(self, query: torch.Tensor, points: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return pointops.interpolate(query, points, features, k=3, chunk=None if self.dense else self.chunk,
                                    block=self.block)


class PointTransformerLayer(nn.Module):
    """Vector self-attention y_i = sum_j softmax_j(gamma(k_j - q_i + delta_ij)) (.) (v_j + delta_ij)."""

    def __init__(self, channels: int, share_planes: int = 8) -> None:
        super().__init__()
        if channels % share_planes:
            raise ValueError(f"{NAME}: {channels} channels are not divisible by share_planes={share_planes}")
        self.channels, self.share_planes = channels, share_planes
        groups = channels // share_planes
        self.to_q = nn.Linear(channels, channels)
        self.to_k = nn.Linear(channels, channels)
        self.to_v = nn.Linear(channels, channels)
        # theta: position encoding of p_j - p_i
        self.pos = nn.Sequential(nn.Linear(3, 3), PointBatchNorm(3), nn.ReLU(inplace=True), nn.Linear(3, channels))
        # gamma: attention weights, one per group of share_planes channels
        self.weight = nn.Sequential(nn.Linear(channels, groups), PointBatchNorm(groups), nn.ReLU(inplace=True),
                                    nn.Linear(groups, groups))

    def forward(self, xyz: torch.Tensor, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        """xyz [B, N, 3], x [B, N, C], neighbours [B, N, k] (indices into N) -> [B, N, C]."""
        batch, n_points, k = neighbours.shape
        q = self.to_q(x)
        delta = self.pos(pointops.gather(xyz, neighbours) - xyz.unsqueeze(2))  # [B, N, k, C]
        # k_j - q_i + delta_ij and v_j + delta_ij, in place on the fresh gathered tensors
        relation = pointops.gather(self.to_k(x), neighbours).sub_(q.unsqueeze(2)).add_(delta)  # [B, N, k, C]
        w = self.weight(relation).softmax(dim=2)  # [B, N, k, C/s]
        values = pointops.gather(self.to_v(x), neighbours).add_(delta)
        values = values.view(batch, n_points, k, self.share_planes, self.channels // self.share_planes)
        return (values * w.unsqueeze(3)).sum(dim=2).reshape(batch, n_points, self.channels)


class PointTransformerBlock(nn.Module):
    """Residual bottleneck around a :class:`PointTransformerLayer`."""

    def __init__(self, channels: int, share_planes: int = 8) -> None:
        super().__init__()
        self.linear1 = linear_bn_relu(channels, channels)
        self.attention = PointTransformerLayer(channels, share_planes)
        self.bn2 = PointBatchNorm(channels)
        self.linear3 = nn.Linear(channels, channels, bias=False)
        self.bn3 = PointBatchNorm(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, xyz: torch.Tensor, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        y = self.linear1(x)
        y = self.relu(self.bn2(self.attention(xyz, y, neighbours)))
        y = self.bn3(self.linear3(y))
        return self.relu(y + x)


class TransitionDown(nn.Module):
    """Stride 1: a per-point Linear+BN+ReLU. Stride s: farthest point sampling to N // s points, kNN grouping of
    [p_j - p_i, f_j], Linear+BN+ReLU, max over the neighbours."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, neighbours: int = 16,
                 knn: KnnSettings | None = None) -> None:
        super().__init__()
        self.stride, self.neighbours = stride, neighbours
        self.knn = knn or KnnSettings()
        self.mlp = linear_bn_relu(c_in + 3 if stride > 1 else c_in, c_out)

    def forward(self, xyz: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.stride == 1:
            return xyz, self.mlp(x)
        n_points = xyz.shape[1]
        m = max(1, n_points // self.stride)
        centres = pointops.gather(xyz, pointops.farthest_point_sampling(xyz, m))  # [B, m, 3]
        k = min(self.neighbours, n_points)
        idx = self.knn.indices(centres, xyz, k)  # [B, m, k]
        grouped = torch.cat([pointops.gather(xyz, idx) - centres.unsqueeze(2), pointops.gather(x, idx)], dim=-1)
        return centres, self.mlp(grouped).max(dim=2).values


class TransitionUp(nn.Module):
    """Coarse -> fine: interpolate(Linear+BN+ReLU(coarse)) + Linear+BN+ReLU(skip), 3-NN inverse distance."""

    def __init__(self, c_coarse: int, c_fine: int, knn: KnnSettings | None = None) -> None:
        super().__init__()
        self.coarse = linear_bn_relu(c_coarse, c_fine)
        self.skip = linear_bn_relu(c_fine, c_fine)
        self.knn = knn or KnnSettings()

    def forward(self, xyz: torch.Tensor, skip: torch.Tensor, coarse_xyz: torch.Tensor,
                coarse: torch.Tensor) -> torch.Tensor:
        return self.knn.interpolate(xyz, coarse_xyz, self.coarse(coarse)) + self.skip(skip)


class GlobalContext(nn.Module):
    """The coarsest decoder level's transition: Linear+BN+ReLU of [f_i, ReLU(Linear(mean over points of f))]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pool = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(inplace=True))
        self.mix = linear_bn_relu(2 * channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = self.pool(x.mean(dim=1, keepdim=True)).expand_as(x)
        return self.mix(torch.cat([x, context], dim=-1))


class Stage(nn.Module):
    """A list of blocks sharing one neighbourhood (the kNN of the stage's points, computed once)."""

    def __init__(self, channels: int, blocks: int, share_planes: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(PointTransformerBlock(channels, share_planes) for _ in range(blocks))

    def forward(self, xyz: torch.Tensor, x: torch.Tensor, neighbours: torch.Tensor | None) -> torch.Tensor:
        for block in self.blocks:
            x = block(xyz, x, neighbours)
        return x


class PointTransformerUNet(nn.Module):
    """Point Transformer segmentation U-Net: (xyz [B, N, 3], features [B, N, in_channels]) -> features
    [B, N, channels[0]] at the input points.

    Reusable for any depth and width (e.g. the contextualiser's shrunk U-Net):

    - ``in_channels``: width of the input features (3 when they are the coordinates themselves);
    - ``channels``, ``blocks``, ``neighbours``, ``strides``: one entry per stage (their common length is the
      number of scales); stage i downsamples by ``strides[i]`` (the first is normally 1), then runs
      ``blocks[i]`` attention blocks of width ``channels[i]`` over ``neighbours[i]`` nearest neighbours;
      ``blocks[i] = 0`` is allowed (transitions only);
    - ``share_planes``: channels sharing one attention weight (every width must be divisible by it);
    - ``decoder_blocks``: attention blocks per decoder stage (1 in the paper);
    - ``global_context``: the coarsest decoder level's global-context transition (see the module docstring);
    - ``dense_knn``: all-pairs kNN (the full distance matrix) instead of the chunked, spatially pruned one
      (the same neighbours up to ties); ``knn_chunk``: queries per kNN chunk; ``knn_block``: points per block
      of the pruning (``None``: plain chunks).

    ``forward(xyz, features=None)``: ``features`` default to ``xyz``. With ``return_stages=True`` it also returns
    the per-stage encoder outputs [(xyz_i, x_i)] (stage i has N // prod(strides[:i+1]) points).
    ``self.encoding`` is the ``points`` encoding it produces (dim = channels[0]).
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (32, 64, 128, 256, 512),
                 blocks: Sequence[int] = (1, 2, 3, 5, 2), neighbours: Sequence[int] = (8, 16, 16, 16, 16),
                 strides: Sequence[int] = (1, 4, 4, 4, 4), share_planes: int = 8, decoder_blocks: int = 1,
                 global_context: bool = True, dense_knn: bool = False, knn_chunk: int = pointops.KNN_CHUNK,
                 knn_block: int | None = pointops.KNN_BLOCK) -> None:
        super().__init__()
        channels, blocks, neighbours, strides = (list(map(int, v)) for v in (channels, blocks, neighbours, strides))
        if not len(channels) == len(blocks) == len(neighbours) == len(strides) >= 1:
            raise ValueError(f"{NAME}: channels {channels}, blocks {blocks}, neighbours {neighbours} and strides "
                             f"{strides} must have one entry per stage (the same length, at least 1)")
        if min(strides) < 1 or min(neighbours) < 1 or min(blocks) < 0 or decoder_blocks < 0:
            raise ValueError(f"{NAME}: strides and neighbours must be >= 1, blocks >= 0")
        self.channels, self.blocks, self.neighbours, self.strides = channels, blocks, neighbours, strides
        self.in_channels, self.share_planes = int(in_channels), int(share_planes)
        self.knn = KnnSettings(dense_knn, knn_chunk, knn_block)
        widths = [self.in_channels] + channels
        self.down = nn.ModuleList(TransitionDown(widths[i], widths[i + 1], strides[i], neighbours[i], self.knn)
                                  for i in range(len(channels)))
        self.enc = nn.ModuleList(Stage(channels[i], blocks[i], share_planes) for i in range(len(channels)))
        self.context = GlobalContext(channels[-1]) if global_context else None
        self.up = nn.ModuleList(TransitionUp(channels[i + 1], channels[i], self.knn)
                                for i in range(len(channels) - 1))
        self.dec = nn.ModuleList(Stage(channels[i], decoder_blocks, share_planes) for i in range(len(channels)))
        self.encoding = EncodingInfo(kind="points", dim=channels[0])

    @property
    def dense_knn(self) -> bool:
        return self.knn.dense

    @dense_knn.setter
    def dense_knn(self, value: bool) -> None:
        """Switch every kNN of the network between the chunked and the all-pairs version."""
        self.knn.dense = bool(value)

    def _neighbours(self, xyz: torch.Tensor, stage: int) -> torch.Tensor:
        return self.knn.indices(xyz, xyz, min(self.neighbours[stage], xyz.shape[1]))

    def forward(self, xyz: torch.Tensor, features: torch.Tensor | None = None, return_stages: bool = False):
        if xyz.dim() != 3 or xyz.shape[-1] != 3:
            raise ValueError(f"{NAME}: expected points [B, N, 3], got {list(xyz.shape)}")
        x = xyz if features is None else features
        if x.shape[-1] != self.in_channels:
            raise ValueError(f"{NAME}: built for {self.in_channels} input channels, got features "
                             f"{list(x.shape)}")
        levels: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
        p = xyz
        for i, (down, stage) in enumerate(zip(self.down, self.enc)):
            p, x = down(p, x)
            needs_knn = self.blocks[i] > 0 or len(self.dec[i].blocks) > 0
            nbrs = self._neighbours(p, i) if needs_knn else None
            levels.append((p, stage(p, x, nbrs), nbrs))
        p, x, nbrs = levels[-1]
        if self.context is not None:
            x = self.context(x)
        x = self.dec[-1](p, x, nbrs)
        for i in range(len(levels) - 2, -1, -1):
            p_fine, skip, nbrs = levels[i]
            x = self.up[i](p_fine, skip, p, x)
            p = p_fine
            x = self.dec[i](p, x, nbrs)
        if return_stages:
            return (p, x), [(level[0], level[1]) for level in levels]
        return p, x


def build(config: PointTransformerConfig, info: DatasetInfo | None) -> PointTransformerUNet:
    """Encoder factory: the U-Net over the input coordinates (features = xyz)."""
    return PointTransformerUNet(
        in_channels=3, channels=list(config.channels), blocks=list(config.blocks),
        neighbours=list(config.neighbours), strides=list(config.strides), share_planes=config.share_planes,
        decoder_blocks=config.decoder_blocks, global_context=config.global_context, dense_knn=config.dense_knn,
        knn_chunk=config.knn_chunk, knn_block=config.knn_block if config.knn_block > 0 else None)
