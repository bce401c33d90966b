"""Attentive interpolation of a ``points`` encoding at query points, shared by the ``udf`` and ``semantic``
decoders (one implementation).

What the papers say. The contextualising paper (Costain, Li and Prisacariu, Sec. 3 "Method"; reprinted as
Chapter 6 of Costain's thesis "Efficient Processing and Representations for 3D Tasks", whose Sec. 3 has the
fuller sentence) takes RangeUDF's decoders (Wang et al. 2022) as they are: "KNN is used to collect the K
nearest encoding vectors for each query point q, which are then combined using a simple attention module.
These combined features, alongside the corresponding query point, are then fed into the UDF and semantic
segmentation modules"; its limitations (Sec. 6) call it a *scalar* attention module (one weight per
neighbour, not per channel). The relative position encoding r = [|q - p|, q - p, q, p] (10 values) and K = 4
are the issue's specification of RangeUDF's module; RangeUDF's own text is not among the sources available
here, so the layer sizes below are this implementation's choice.

Definition implemented, for a query q and its K nearest encoded points p_k with features f_k (D channels)::

    r_k   = [ |q - p_k| / s, (q - p_k) / s, q, p_k ]       (10 values; s: the relative scale)
    e_k   = ReLU(Linear(r_k))                              encoded position, P channels (P = 0: none)
    g_k   = [ f_k, e_k ]                                   D + P channels
    a_k   = MLP(g_k)                                       one scalar score per neighbour
    w_k   = softmax_k(a_k)                                 over the K neighbours (sum to 1)
    out   = sum_k w_k g_k = [ sum_k w_k f_k, sum_k w_k e_k ]

so the first D output channels are a convex combination of the neighbours' features (identical features come
out unchanged, whatever the weights), and the last P carry the weighted relative geometry the distance head
needs. The heads then take ``[out, q]`` (the thesis: "alongside the corresponding query point").

The offsets are divided by the relative scale s (about the spacing of the encoded points): in a unit-cube scene
they are ~0.005 against coordinates of ~0.5, and unscaled a freshly initialised first layer barely sees them, so
the distance head stayed at the best constant UDF for hundreds of steps (measured for issue 10).
"""
from __future__ import annotations

import torch
from torch import nn

from harness import pointops


def mlp(c_in: int, hidden: list[int], c_out: int) -> nn.Sequential:
    """Linear+ReLU per hidden width, then a Linear to ``c_out`` (no activation)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(c_in, int(width)), nn.ReLU(inplace=True)]
        c_in = int(width)
    return nn.Sequential(*layers, nn.Linear(c_in, c_out))


def relative_positions(query: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor,
                       scale: float = 1.0) -> torch.Tensor:
    """r = [|q - p| / scale, (q - p) / scale, q, p] -> [B, M, K, 10] for queries [B, M, 3], their neighbours
    [B, M, K, 3] and the distances |q - p| [B, M, K] (passed in: pointops.knn's are safe to differentiate at 0)."""
    q = query.unsqueeze(2).expand_as(neighbours)
    return torch.cat([distances.unsqueeze(-1) / scale, (q - neighbours) / scale, q, neighbours], dim=-1)


class AttentiveInterpolation(nn.Module):
    """(query [B, M, 3], xyz [B, N, 3], features [B, N, D]) -> [B, M, D + P] (see the module docstring).

    ``k``: neighbours per query (clamped to N); ``position_channels`` P (0: the output is the attention-weighted
    features only, scores from the features alone); ``attention_hidden``: hidden width of the score MLP (0: one
    Linear); ``relative_scale`` s divides the offsets in r. ``forward(..., return_weights=True)`` also returns the
    weights [B, M, K] and indices [B, M, K].
    """

    def __init__(self, feature_dim: int, k: int = 4, position_channels: int = 32, attention_hidden: int = 32,
                 knn_chunk: int = pointops.KNN_CHUNK, relative_scale: float = 1.0) -> None:
        super().__init__()
        if k < 1 or feature_dim < 1 or position_channels < 0 or attention_hidden < 0 or relative_scale <= 0:
            raise ValueError(f"attentive interpolation: need k >= 1 and feature_dim >= 1 (got {k}, {feature_dim}), "
                             f"position_channels and attention_hidden >= 0, relative_scale > 0 (got "
                             f"{relative_scale})")
        self.k, self.feature_dim, self.position_channels = int(k), int(feature_dim), int(position_channels)
        self.relative_scale = float(relative_scale)
        self.knn_chunk = int(knn_chunk)
        self.position = (nn.Sequential(nn.Linear(10, position_channels), nn.ReLU(inplace=True))
                         if position_channels else None)
        width = feature_dim + position_channels
        self.score = mlp(width, [attention_hidden] if attention_hidden else [], 1)
        self.out_dim = width

    def forward(self, query: torch.Tensor, xyz: torch.Tensor, features: torch.Tensor,
                return_weights: bool = False):
        if features.shape[-1] != self.feature_dim or features.shape[:2] != xyz.shape[:2]:
            raise ValueError(f"attentive interpolation: built for {self.feature_dim} features, got xyz "
                             f"{list(xyz.shape)} and features {list(features.shape)}")
        k = min(self.k, xyz.shape[1])
        distances, index = pointops.knn(query, xyz, k, chunk=self.knn_chunk)  # [B, M, K], nearest first
        grouped = pointops.gather(features, index)  # [B, M, K, D]
        if self.position is not None:
            r = relative_positions(query, pointops.gather(xyz, index), distances, self.relative_scale)
            grouped = torch.cat([grouped, self.position(r)], dim=-1)  # [B, M, K, D + P]
        weights = self.score(grouped).squeeze(-1).softmax(dim=-1)  # [B, M, K]
        out = (weights.unsqueeze(-1) * grouped).sum(dim=2)
        if return_weights:
            return out, weights, index
        return out


class PointQueryHead(nn.Module):
    """Attentive interpolation then an MLP over ``[interpolated, q]`` to ``c_out`` values per query:
    (query [B, M, 3], (xyz, features)) -> [B, M, c_out]."""

    def __init__(self, feature_dim: int, c_out: int, hidden: list[int], k: int = 4, position_channels: int = 32,
                 attention_hidden: int = 32, knn_chunk: int = pointops.KNN_CHUNK, relative_scale: float = 1.0) -> None:
        super().__init__()
        self.interpolation = AttentiveInterpolation(feature_dim, k, position_channels, attention_hidden, knn_chunk,
                                                    relative_scale)
        self.mlp = mlp(self.interpolation.out_dim + 3, list(hidden), c_out)

    def forward(self, query: torch.Tensor, encoding: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        xyz, features = encoding
        if query.dim() != 3 or query.shape[-1] != 3 or query.shape[0] != xyz.shape[0]:
            raise ValueError(f"expected query [B, M, 3] for a batch of {xyz.shape[0]}, got {list(query.shape)}")
        return self.mlp(torch.cat([self.interpolation(query, xyz, features), query], dim=-1))
