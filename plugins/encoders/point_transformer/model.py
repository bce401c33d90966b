"""Point Transformer (v1) segmentation U-Net in plain PyTorch, written from Zhao et al., ICCV 2021.

Batched clouds of equal size: coordinates ``xyz`` [B, N, 3] and features [B, N, C]. kNN and farthest point
sampling come from :mod:`harness.pointops` (exact: a KD-tree on CPU, the chunked, spatially pruned torch search
on other devices or with ``knn_tree=False``; ``dense_knn=True`` switches every kNN to the all-pairs distance
matrix, the reference the benchmark compares against). The
neighbourhoods of a level are searched once and shared by its encoder and decoder blocks.

Building blocks (Section 3 and Figure 4 of the paper):

- :class:`PointTransformerLayer` - vector self-attention over each point's ``k`` nearest neighbours (itself
  included)::

      delta_ij = theta(p_j - p_i)                     theta: Linear(3,3)+BN+ReLU+Linear(3,C)
      w_ij     = softmax_j( gamma(k_j - q_i + delta_ij) )   gamma: Linear(C,C/s)+BN+ReLU+Linear(C/s,C/s)
      y_i      = sum_j w_ij (.) (v_j + delta_ij)

  with q, k, v linear maps of the features and ``s = share_planes``: the C/s attention weights are shared by
  ``s`` groups of channels (channel ``g*C/s + c`` uses weight ``c``).
  Computed in an equivalent restructured form that never materialises a [B, N, k, C] tensor (see the class).
- :class:`PointTransformerBlock` - residual bottleneck: Linear+BN+ReLU, attention+BN+ReLU, Linear+BN, plus the
  input, ReLU.
- :class:`TransitionDown` - stride 1: Linear+BN+ReLU per point; stride s > 1: N//s points by farthest point
  sampling, each gathers its k nearest input points' ``[p_j - p_i, f_j]``, Linear+BN+ReLU, max over the k
  (computed with the Linear applied per input point before the gather, and the ReLU after the max).
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

from collections.abc import Sequence

import torch
from torch import nn

from harness import pointops
from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from . import PointTransformerConfig

NAME = "point_transformer"


class PointBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the last axis of [..., C] tensors (statistics over every point/neighbour in the batch).

    Its output is a view (of the [M, C] normalised rows): the ReLUs after it are out of place, as an in-place op
    on a view makes autograd copy the whole gradient in backward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


def linear_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(c_in, c_out, bias=False), PointBatchNorm(c_out), nn.ReLU())


# Query-point pairs from which the spatial pruning pays for its bookkeeping (1 thread, room scans: at 2,500 x
# 2,500 pairs plain chunks are 1.3x faster, at 10,000 x 2,500 the pruned search 1.25x; benchmarks/point_transformer).
PRUNE_FROM_PAIRS = 1 << 24


class KnnSettings:
    """How a network's kNN searches run, shared by all its modules (so one switch changes them all):
    ``dense`` (the all-pairs distance matrix, the benchmark's reference), else, with ``tree``, a KD-tree for CPU
    tensors, and otherwise ``chunk`` queries at a time, spatially pruned over blocks of ``block`` points
    (``None``: never) in searches of at least ``PRUNE_FROM_PAIRS`` query-point pairs; see
    :mod:`harness.pointops`."""

    def __init__(self, dense: bool = False, chunk: int = pointops.KNN_CHUNK,
                 block: int | None = pointops.KNN_BLOCK, tree: bool = True) -> None:
        if int(chunk) < 1:
            raise ValueError(f"{NAME}: knn chunk must be >= 1, got {chunk}")
        self.dense, self.chunk, self.block, self.tree = bool(dense), int(chunk), block, bool(tree)

    def _block(self, query: torch.Tensor, points: torch.Tensor) -> int | None:
        return self.block if query.shape[1] * points.shape[1] >= PRUNE_FROM_PAIRS else None

    def indices(self, query: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
        return pointops.knn_indices(query, points, k, None if self.dense else self.chunk, self._block(query, points),
                                    self.tree)

    def interpolate(self, query: torch.Tensor, points: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        return pointops.interpolate(query, points, features, k=3, chunk=None if self.dense else self.chunk,
                                    block=self._block(query, points), tree=self.tree)


class _NeighbourWeightedSum(torch.autograd.Function):
    """out[r, s, g] = sum_j w[r, j, g] * values[index[j, r], s, g]: the attention's weighted sum of the gathered
    neighbours' values (weight g shared by the s channel groups), one neighbour slot j at a time into reused
    [R, s, G] buffers, with a hand-written backward that gathers the values again instead of keeping the
    [R, k, s, G] gathered tensor."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, weights: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """values [P, s, G], weights [R, k, G], index [k, R] (contiguous rows, into P) -> [R, s, G]."""
        ctx.save_for_backward(values, weights, index)
        out = values.new_zeros(weights.shape[0], values.shape[1], weights.shape[2])
        gathered = torch.empty_like(out)  # one buffer for every slot: fresh large tensors page-fault
        for j in range(index.shape[0]):
            out.addcmul_(torch.index_select(values, 0, index[j], out=gathered), weights[:, j].unsqueeze(1))
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        values, weights, index = ctx.saved_tensors
        grad_values = torch.zeros_like(values) if ctx.needs_input_grad[0] else None
        # the weights' gradient slot-major [k, R, G] (contiguous rows to write), returned as a transposed view
        grad_weights = weights.new_empty(index.shape[0], *grad.shape[::2]) if ctx.needs_input_grad[1] else None
        scratch = torch.empty_like(grad)
        for j in range(index.shape[0]):
            if grad_weights is not None:
                torch.sum(torch.index_select(values, 0, index[j], out=scratch).mul_(grad), dim=1, out=grad_weights[j])
            if grad_values is not None:
                grad_values.index_add_(0, index[j], torch.mul(grad, weights[:, j].unsqueeze(1), out=scratch))
        return grad_values, None if grad_weights is None else grad_weights.transpose(0, 1), None


class PointTransformerLayer(nn.Module):
    """Vector self-attention y_i = sum_j softmax_j(gamma(k_j - q_i + delta_ij)) (.) (v_j + delta_ij).

    Computed without any [B, N, k, C] tensor (the same function, the same parameters), by linearity:

    - gamma's first Linear W_g (C -> C/s) is applied before the gather: W_g k_j - W_g q_i + W_g delta_ij, with
      W_g k and W_g q per point (projections of x by the products W_g W_k, W_g W_q) and W_g delta_ij =
      (W_g W_t) h_ij + W_g b_t from theta's 3-wide hidden h_ij (delta_ij = W_t h_ij + b_t): the logits' branch
      is C/s wide throughout; likewise theta's first Linear A (p_j - p_i) = A p_j - A p_i, A p per point;
    - sum_j w_ij (.) delta_ij = W_t (sum_j w_ij h_ij^T) + b_t per group (the weights sum to 1 over j), a
      [N, C/s, 3] contraction; sum_j w_ij (.) v_j is :class:`_NeighbourWeightedSum`, which keeps no gathered
      values for backward.

    What backward keeps per layer is then a few [B, N, k, C/s] and [B, N, k, 3] tensors (softmax weights, the
    BN inputs and outputs of gamma and theta) instead of several [B, N, k, C] ones.

    BatchNorm layers run once per forward, on the same inputs as the direct formula (their statistics and
    running estimates are unchanged).
    """

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
        self.pos = nn.Sequential(nn.Linear(3, 3), PointBatchNorm(3), nn.ReLU(), nn.Linear(3, channels))
        # gamma: attention weights, one per group of share_planes channels
        self.weight = nn.Sequential(nn.Linear(channels, groups), PointBatchNorm(groups), nn.ReLU(),
                                    nn.Linear(groups, groups))

    def forward(self, xyz: torch.Tensor, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        """xyz [B, N, 3], x [B, N, C], neighbours [B, N, k] (indices into N) -> [B, N, C]."""
        batch, n_points, k = neighbours.shape
        groups = self.channels // self.share_planes
        gamma_in, theta_out = self.weight[0], self.pos[3]
        # W_g k and -W_g q (C/s wide each, contiguous for the gather and the broadcast add) and v, per point
        key = nn.functional.linear(x, gamma_in.weight @ self.to_k.weight, gamma_in.weight @ self.to_k.bias)
        neg_query = nn.functional.linear(x, -gamma_in.weight @ self.to_q.weight, -gamma_in.weight @ self.to_q.bias)
        value = self.to_v(x)
        # theta's hidden h_ij = ReLU(BN(A (p_j - p_i) + a)) [B, N, k, 3], with A p per point, then gathered
        theta_in = self.pos[0]
        moved = nn.functional.linear(xyz, theta_in.weight)
        # (difference first: exactly 0 at j = i, as p_i - p_i in the formula, where ReLU(BN) may sit at its kink)
        hidden = (pointops.gather(moved, neighbours) - moved.unsqueeze(2)).add_(theta_in.bias)
        hidden = self.pos[2](self.pos[1](hidden))
        # gamma's first Linear of (k_j - q_i + delta_ij), C/s wide. (The Linear's output and the gather are views:
        # the first sum is out of place, else autograd copies the whole gradient; -q_i is added, as sub's
        # backward would negate the whole [B, N, k, C/s] gradient.)
        logits = pointops.gather(key, neighbours) + nn.functional.linear(
            hidden, gamma_in.weight @ theta_out.weight, gamma_in.weight @ theta_out.bias + gamma_in.bias)
        logits = logits.add_(neg_query.unsqueeze(2))
        w = self.weight[1:](logits).softmax(dim=2)  # [B, N, k, C/s]
        # sum_j w_ij (.) v_j, rows of all clouds flattened (indices offset by cloud)
        offsets = torch.arange(batch, device=neighbours.device).mul_(n_points).view(batch, 1, 1)
        index = (neighbours + offsets).view(batch * n_points, k).t().contiguous()
        out = _NeighbourWeightedSum.apply(value.reshape(batch * n_points, self.share_planes, groups),
                                          w.reshape(batch * n_points, k, groups), index)
        # sum_j w_ij (.) delta_ij = W_t (sum_j w_ij h_ij) + b_t, channel g*C/s + c taking weight c
        moments = w.transpose(2, 3) @ hidden  # [B, N, C/s, 3]
        positions = torch.einsum("bncm,gcm->bngc", moments, theta_out.weight.view(self.share_planes, groups, 3))
        return (out.view(batch, n_points, self.channels) + positions.reshape(batch, n_points, self.channels)
                + theta_out.bias)


class PointTransformerBlock(nn.Module):
    """Residual bottleneck around a :class:`PointTransformerLayer`."""

    def __init__(self, channels: int, share_planes: int = 8) -> None:
        super().__init__()
        self.linear1 = linear_bn_relu(channels, channels)
        self.attention = PointTransformerLayer(channels, share_planes)
        self.bn2 = PointBatchNorm(channels)
        self.linear3 = nn.Linear(channels, channels, bias=False)
        self.bn3 = PointBatchNorm(channels)
        self.relu = nn.ReLU()

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
        # Linear([p_j - p_i, f_j]) = W [p_j, f_j] - W_p p_i: the Linear per input point, then gathered (the sum
        # out of place: in place on the gathered view, autograd would copy the whole gradient in backward); and
        # max_j ReLU(BN(.)) = ReLU(max_j BN(.)): no [B, m, k, C] ReLU output is kept for backward
        weight = self.mlp[0].weight
        mixed = pointops.gather(nn.functional.linear(torch.cat([xyz, x], dim=-1), weight), idx) \
            + nn.functional.linear(centres, -weight[:, :3]).unsqueeze(2)
        return centres, self.mlp[2](self.mlp[1](mixed).max(dim=2).values)


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
        self.pool = nn.Sequential(nn.Linear(channels, channels), nn.ReLU())
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
                 knn_block: int | None = pointops.KNN_BLOCK, knn_tree: bool = True) -> None:
        super().__init__()
        channels, blocks, neighbours, strides = (list(map(int, v)) for v in (channels, blocks, neighbours, strides))
        if not len(channels) == len(blocks) == len(neighbours) == len(strides) >= 1:
            raise ValueError(f"{NAME}: channels {channels}, blocks {blocks}, neighbours {neighbours} and strides "
                             f"{strides} must have one entry per stage (the same length, at least 1)")
        if min(strides) < 1 or min(neighbours) < 1 or min(blocks) < 0 or decoder_blocks < 0:
            raise ValueError(f"{NAME}: strides and neighbours must be >= 1, blocks >= 0")
        self.channels, self.blocks, self.neighbours, self.strides = channels, blocks, neighbours, strides
        self.in_channels, self.share_planes = int(in_channels), int(share_planes)
        self.knn = KnnSettings(dense_knn, knn_chunk, knn_block, knn_tree)
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
        knn_chunk=config.knn_chunk, knn_block=config.knn_block if config.knn_block > 0 else None,
        knn_tree=config.knn_tree)
