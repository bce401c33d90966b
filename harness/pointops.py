"""Batched point-cloud operations in plain PyTorch: k nearest neighbours, farthest point sampling, gathering
and inverse-distance interpolation (shared by the point encoders, the UDF/semantic decoders and the
contextualiser).

Conventions: clouds are batched and of equal size, ``[B, N, 3]``; per-point features are ``[B, N, C]``;
neighbour indices index the second axis of the cloud they were searched in. Nothing here loops over points
in Python; :func:`farthest_point_sampling` loops over its ``m`` samples (each sample depends on the previous
ones), vectorised over batch and points.

Memory. :func:`knn` never holds the full ``M x N`` distance matrix: it processes ``chunk`` queries at a
time, so its peak working memory is about ``B x chunk x N`` floats for the distances (plus the same again
for ``topk``'s scratch), independent of ``M``. ``chunk=None`` (or ``dense=True``) is the all-pairs version
with one ``B x M x N`` matrix, kept as the reference the benchmark compares against.
"""
from __future__ import annotations

import torch

# Default number of queries per kNN chunk: 2048 x 10k points x 4 bytes = 80 MB per batch element at most.
KNN_CHUNK = 2048


def _pairwise_sq(query: torch.Tensor, points: torch.Tensor, points_sq: torch.Tensor) -> torch.Tensor:
    """Squared distances [B, c, N] as |q|^2 + |p|^2 - 2 q.p (one batched matmul), clamped at 0."""
    query_sq = query.square().sum(-1, keepdim=True)  # [B, c, 1]
    dist = torch.baddbmm(points_sq.unsqueeze(1), query, points.transpose(1, 2), beta=1.0, alpha=-2.0)
    return dist.add_(query_sq).clamp_(min=0.0)


@torch.no_grad()
def knn_indices(query: torch.Tensor, points: torch.Tensor, k: int, chunk: int | None = KNN_CHUNK) -> torch.Tensor:
    """Indices [B, M, k] (int64) of the ``k`` nearest ``points`` [B, N, 3] to every ``query`` [B, M, 3],
    nearest first. ``chunk`` queries are processed at a time (``None``: all at once, the dense version).

    Candidates are ranked by the expanded squared distance ``|q|^2 + |p|^2 - 2 q.p`` computed after centring
    both clouds on the points' centroid (less cancellation); ties at the k-th place are broken arbitrarily,
    so any valid k-nearest set may come back. No gradient flows through indices.
    """
    _check_clouds(query, points)
    batch, n_points, _ = points.shape
    n_query = query.shape[1]
    if not 1 <= k <= n_points:
        raise ValueError(f"knn: k={k} must be between 1 and the number of points ({n_points})")
    centre = points.mean(dim=1, keepdim=True)
    points = points - centre
    query = query - centre
    points_sq = points.square().sum(-1)  # [B, N]
    step = n_query if chunk is None else max(1, int(chunk))
    out = torch.empty(batch, n_query, k, dtype=torch.long, device=points.device)
    for start in range(0, n_query, step):
        stop = min(start + step, n_query)
        dist = _pairwise_sq(query[:, start:stop], points, points_sq)
        out[:, start:stop] = dist.topk(k, dim=-1, largest=False, sorted=True).indices
        del dist
    return out


def knn(query: torch.Tensor, points: torch.Tensor, k: int, chunk: int | None = KNN_CHUNK,
        dense: bool = False, squared: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest neighbours in ``points`` [B, N, 3] of every ``query`` [B, M, 3].

    Returns ``(distances [B, M, k], indices [B, M, k])``, nearest first. The distances are recomputed
    exactly from the selected pairs (``|q - p|``, differentiable in both clouds; ``squared=True`` gives
    ``|q - p|^2``). Working memory is ``B x chunk x N`` floats per chunk; ``dense=True`` (or ``chunk=None``)
    computes the full ``B x M x N`` matrix at once (the all-pairs reference).
    """
    indices = knn_indices(query, points, k, None if dense else chunk)
    sq = (gather(points, indices) - query.unsqueeze(2)).square().sum(-1)  # [B, M, k]
    if k > 1:  # rank by the exact distances (the expanded form can swap near-equal neighbours)
        order = sq.detach().argsort(dim=-1, stable=True)
        sq = sq.gather(-1, order)
        indices = indices.gather(-1, order)
    if squared:
        return sq, indices
    # sqrt with a zero (sub)gradient where a query sits on a point, instead of NaN
    positive = sq > 0
    return torch.where(positive, torch.where(positive, sq, torch.ones_like(sq)).sqrt(), torch.zeros_like(sq)), indices


@torch.no_grad()
def farthest_point_sampling(points: torch.Tensor, m: int, start: int | torch.Tensor = 0) -> torch.Tensor:
    """Indices [B, m] (int64) of ``m`` points chosen by farthest point sampling from ``points`` [B, N, 3].

    The first index is ``start`` (0 by default: deterministic; a tensor [B] gives one per cloud, e.g. drawn
    from a seeded generator); each further one is the point farthest (Euclidean) from all chosen so far,
    the lowest index among equally far points. ``m`` iterations of O(B x N) vectorised work.
    """
    if points.dim() != 3 or points.shape[-1] != 3:
        raise ValueError(f"farthest_point_sampling: points must be [B, N, 3], got {list(points.shape)}")
    batch, n_points, _ = points.shape
    if not 1 <= m <= n_points:
        raise ValueError(f"farthest_point_sampling: m={m} must be between 1 and the number of points ({n_points})")
    device = points.device
    out = torch.empty(batch, m, dtype=torch.long, device=device)
    current = torch.as_tensor(start, dtype=torch.long, device=device).expand(batch).clone()
    nearest = torch.full((batch, n_points), float("inf"), dtype=points.dtype, device=device)
    rows = torch.arange(batch, device=device)
    for i in range(m):
        out[:, i] = current
        chosen = points[rows, current].unsqueeze(1)  # [B, 1, 3]
        torch.minimum(nearest, (points - chosen).square().sum(-1), out=nearest)
        current = nearest.argmax(dim=1)  # the first maximal index
    return out


def gather(features: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``features`` [B, N, C] picked by ``indices`` [B, ...] (into N) -> [B, ..., C]; differentiable in the
    features (the backward is an index_add)."""
    batch, n_points, channels = features.shape
    if indices.shape[0] != batch:
        raise ValueError(f"gather: {indices.shape[0]} index rows for a batch of {batch}")
    offsets = torch.arange(batch, device=indices.device).mul_(n_points).view(batch, *([1] * (indices.dim() - 1)))
    flat = (indices + offsets).reshape(-1)
    return features.reshape(batch * n_points, channels).index_select(0, flat).view(*indices.shape, channels)


def interpolation_weights(query: torch.Tensor, points: torch.Tensor, k: int = 3,
                          chunk: int | None = KNN_CHUNK, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse-distance weights [B, M, k] (summing to 1) of the ``k`` nearest ``points`` to each ``query``,
    with their indices [B, M, k]; ``k`` is clamped to the number of points."""
    distances, indices = knn(query, points, min(k, points.shape[1]), chunk)
    weights = 1.0 / (distances + eps)
    return weights / weights.sum(-1, keepdim=True), indices


def interpolate(query_xyz: torch.Tensor, xyz: torch.Tensor, features: torch.Tensor, k: int = 3,
                chunk: int | None = KNN_CHUNK, eps: float = 1e-8) -> torch.Tensor:
    """Features [B, N, C] at ``xyz`` [B, N, 3] interpolated to ``query_xyz`` [B, M, 3] -> [B, M, C]:
    ``sum_j w_j f_j`` over the ``k`` nearest points with ``w_j = (1 / (d_j + eps)) / sum_l 1 / (d_l + eps)``
    (PointNet++'s feature propagation; a query on a point takes that point's features)."""
    weights, indices = interpolation_weights(query_xyz, xyz, k, chunk, eps)
    return (gather(features, indices) * weights.unsqueeze(-1)).sum(dim=2)


def _check_clouds(query: torch.Tensor, points: torch.Tensor) -> None:
    if query.dim() != 3 or points.dim() != 3 or query.shape[-1] != points.shape[-1] or \
            query.shape[0] != points.shape[0]:
        raise ValueError(f"knn: expected query [B, M, D] and points [B, N, D], got {list(query.shape)} and "
                         f"{list(points.shape)}")
