"""Batched point-cloud operations: k nearest neighbours, farthest point sampling, gathering and
inverse-distance interpolation (shared by the point encoders, the UDF/semantic decoders and the
contextualiser). Plain PyTorch, except the kNN search of CPU tensors, which by default goes to a KD-tree
(pykdtree: compiled, exact, tens of times faster there than any vectorised torch search: 10k points, k = 16,
one thread: about 10 ms against 110 ms for the pruned chunks below); ``tree=False`` keeps the torch search,
which is what runs on other devices.

Conventions: clouds are batched and of equal size, ``[B, N, 3]``; per-point features are ``[B, N, C]``;
neighbour indices index the second axis of the cloud they were searched in. Nothing here loops over points
in Python; :func:`farthest_point_sampling` loops over its ``m`` samples (each sample depends on the previous
ones), vectorised over batch and points.

Memory and speed. :func:`knn` never holds the full ``M x N`` distance matrix: it processes ``chunk`` queries
at a time, so its peak working memory is at most about ``B x chunk x N`` floats for the distances (plus
``topk``'s scratch), independent of ``M``. By default it is also pruned spatially (exact): queries and points
are put in Morton (Z-curve) order, points cut into blocks with bounding boxes, and a chunk of queries only
meets the blocks that can hold one of its neighbours (see ``_knn_pruned``): for 16 neighbours on a
10k-point room scan that is 12% of the all-pairs distances (18% on a uniform cube), 1.3% at 100k points.
``chunk=None`` (or ``dense=True``) is the all-pairs version with one ``B x M x N`` matrix, kept as the
reference the benchmark compares against. Measured figures: ``benchmarks/point_transformer.py``.

Rounding. The pruned search and small clouds sum squared per-axis differences (as accurate as the
coordinates). The unpruned chunks and the dense reference use the expanded form ``|q|^2 + |p|^2 - 2 q.p``
(one matmul, as ``torch.cdist``) about the cloud's centroid: clouds far from their centroid (e.g. two distant
clusters) can then swap near-equal neighbours. :func:`knn` recomputes the returned distances exactly and
orders by them.
"""
from __future__ import annotations

import torch

# Queries per kNN chunk: with pruning (the default) its distances are chunk x (candidate points) floats, at
# most chunk x N; without, chunk x N (256 x 100k points x 4 bytes = 102 MB per batch element).
KNN_CHUNK = 256
# Points per block of the spatial pruning (consecutive in Morton order, one bounding box each).
KNN_BLOCK = 32
# Queries per tile of the spatial pruning (consecutive in Morton order, one bounding box and bound each).
KNN_TILE = 16
_MORTON_BITS = 10  # per axis: 30-bit codes


def _pairwise_sq(query: torch.Tensor, points: torch.Tensor, points_sq: torch.Tensor) -> torch.Tensor:
    """Squared distances [B, c, N] as |q|^2 + |p|^2 - 2 q.p (one batched matmul), clamped at 0."""
    query_sq = query.square().sum(-1, keepdim=True)  # [B, c, 1]
    dist = torch.baddbmm(points_sq.unsqueeze(1), query, points.transpose(1, 2), beta=1.0, alpha=-2.0)
    return dist.add_(query_sq).clamp_(min=0.0)


def _pairwise_sq_exact(query: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Squared distances [B, c, N] summed from per-axis differences (as accurate as the coordinates allow),
    axis by axis so the scratch stays two [B, c, N] tensors."""
    q, p = query.transpose(1, 2).contiguous(), points.transpose(1, 2).contiguous()  # [B, 3, c], [B, 3, N]
    dist = (q[:, 0, :, None] - p[:, 0, None, :]).square_()
    for axis in range(1, q.shape[1]):
        dist.add_((q[:, axis, :, None] - p[:, axis, None, :]).square_())
    return dist


def _spread_bits(v: torch.Tensor) -> torch.Tensor:
    """Insert two zero bits between each of the low 10 bits of ``v`` (int64)."""
    v = (v | (v << 16)) & 0x030000FF
    v = (v | (v << 8)) & 0x0300F00F
    v = (v | (v << 4)) & 0x030C30C3
    return (v | (v << 2)) & 0x09249249


def morton_codes(points: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Z-order codes [B, N] (int64) of ``points`` [B, N, 3] quantised to 2^10 cells per axis of the box
    [lo, hi] ([B, 1, 3] each): points close in code are close in space."""
    scale = (2 ** _MORTON_BITS - 1) / (hi - lo).clamp_min(1e-12)
    cells = ((points - lo) * scale).long().clamp_(0, 2 ** _MORTON_BITS - 1)
    return _spread_bits(cells[..., 0]) | (_spread_bits(cells[..., 1]) << 1) | (_spread_bits(cells[..., 2]) << 2)


def _knn_dense_chunks(query: torch.Tensor, points: torch.Tensor, k: int, step: int,
                      exact: bool = False) -> torch.Tensor:
    """Every query against every point, ``step`` queries at a time; ``exact``: squared distances from the
    per-axis differences instead of the expanded form."""
    batch, n_query = query.shape[:2]
    points_sq = points.square().sum(-1)  # [B, N]
    out = torch.empty(batch, n_query, k, dtype=torch.long, device=points.device)
    for start in range(0, n_query, step):
        stop = min(start + step, n_query)
        if exact:
            dist = _pairwise_sq_exact(query[:, start:stop], points)
        else:
            dist = _pairwise_sq(query[:, start:stop], points, points_sq)
        out[:, start:stop] = dist.topk(k, dim=-1, largest=False, sorted=True).indices
        del dist
    return out


def _knn_pruned(query: torch.Tensor, points: torch.Tensor, k: int, step: int, block: int, tile: int) -> torch.Tensor:
    """Exact kNN that skips point blocks which cannot hold a neighbour of any query of a tile.

    Points and queries are sorted in Morton order; points are cut into blocks of ``block`` consecutive
    points, queries into tiles of ``tile``, each with a bounding box. Pass 1: for every tile, an upper bound
    R on the k-th neighbour distance of each of its queries, from the points of the blocks whose centres are
    nearest the tile's (distances to k actual points bound the k-th nearest from above); a block whose box is
    farther than R from the tile's box cannot hold a neighbour of any query of the tile. Pass 2: tiles sorted
    by their number of candidate blocks, ``step // tile`` at a time (candidates padded to the group's largest
    count, padding masked), against their candidate points only. At most ``B x step x N`` distances at a time,
    when nothing can be pruned. Distances are summed from per-axis differences (no cancellation).
    """
    batch, n_points, _ = points.shape
    n_query = query.shape[1]
    device = points.device
    both = torch.cat([points, query], dim=1)
    lo, hi = both.amin(dim=1, keepdim=True), both.amax(dim=1, keepdim=True)
    margin = 1e-6 * (hi - lo).square().sum(-1)  # [B, 1]: rounding allowance on squared distances
    p_order = morton_codes(points, lo, hi).argsort(dim=1)
    sorted_points = gather(points, p_order)
    n_blocks = -(-n_points // block)
    pad = n_blocks * block - n_points
    # padded with copies of the last point (keeps the boxes), plus one slot that masked positions point at
    padded = torch.cat([sorted_points, sorted_points[:, -1:].expand(batch, pad + 1, 3)], dim=1)
    blocks = padded[:, :n_blocks * block].view(batch, n_blocks, block, 3)
    block_lo, block_hi = blocks.amin(dim=2), blocks.amax(dim=2)  # [B, nb, 3]
    block_mid = (block_lo + block_hi) / 2
    # queries in Morton order, padded to whole tiles by repeating the last one (its result is written twice)
    q_order = morton_codes(query, lo, hi).argsort(dim=1)
    n_tiles = -(-n_query // tile)
    q_pad = n_tiles * tile - n_query
    if q_pad:
        q_order = torch.cat([q_order, q_order[:, -1:].expand(batch, q_pad)], dim=1)
    tiles = gather(query, q_order).view(batch, n_tiles, tile, 3)
    t_lo, t_hi = tiles.amin(dim=2), tiles.amax(dim=2)  # [B, nt, 3]
    t_mid = (t_lo + t_hi) / 2
    lane = torch.arange(block, device=device)
    per_step = max(1, step // tile)

    def distances(tile_ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Squared distances [B * G, T, P] from the queries of tiles [B, G] to the points at ``padded``
        positions [B, G, P] (inf at positions >= N)."""
        local = gather(tiles.flatten(2), tile_ids).view(*tile_ids.shape, tile, 3).flatten(0, 1)
        dist = _pairwise_sq_exact(local, gather(padded, positions).flatten(0, 1))
        return dist.masked_fill_((positions >= n_points).flatten(0, 1).unsqueeze(1), float("inf"))

    def candidates(tile_ids: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
        """Blocks [B, G, nb] whose box is within sqrt(bound) [B, G] of the tile's box."""
        lo_, hi_ = (box.gather(1, tile_ids.unsqueeze(-1).expand(-1, -1, 3)).unsqueeze(2) for box in (t_lo, t_hi))
        gap = (block_lo.unsqueeze(1) - hi_).clamp_(min=0) + (lo_ - block_hi.unsqueeze(1)).clamp_(min=0)
        return gap.square().sum(-1) <= bound.unsqueeze(-1)

    # pass 1: bounds and candidate counts of every tile
    n_near = min(n_blocks, -(-k // block) + 1)  # enough blocks for k real points (only the last one is padded)
    bounds = torch.empty(batch, n_tiles, dtype=points.dtype, device=device)
    counts = torch.empty(batch, n_tiles, dtype=torch.long, device=device)
    for g0 in range(0, n_tiles, per_step):
        ids = torch.arange(g0, min(g0 + per_step, n_tiles), device=device).expand(batch, -1)
        near = (block_mid.unsqueeze(1) - t_mid[:, g0:g0 + ids.shape[1]].unsqueeze(2)).square().sum(-1)
        near_pos = (near.topk(n_near, dim=-1, largest=False).indices.unsqueeze(-1) * block + lane).flatten(2)
        bound = distances(ids, near_pos).topk(k, dim=-1, largest=False).values[..., -1].amax(dim=-1)
        bound = bound.view(batch, -1) * 1.001 + margin
        bounds[:, g0:g0 + ids.shape[1]] = bound
        counts[:, g0:g0 + ids.shape[1]] = candidates(ids, bound).sum(dim=-1)
    # pass 2: tiles in order of their candidate counts, so a group's padding stays small
    counts, tile_order = counts.sort(dim=1)
    out = torch.empty(batch, n_query, k, dtype=torch.long, device=device)
    for g0 in range(0, n_tiles, per_step):
        ids = tile_order[:, g0:g0 + per_step]  # [B, G]
        n_group = ids.shape[1]
        keep = candidates(ids, bounds.gather(1, ids))
        n_keep = int(counts[:, g0:g0 + n_group].max())
        chosen = keep.to(torch.uint8).argsort(dim=-1, descending=True, stable=True)[..., :n_keep]  # kept first
        cand = (chosen.unsqueeze(-1) * block + lane).flatten(2)  # [B, G, n_keep * block] positions in ``padded``
        unkept = (torch.arange(n_keep, device=device) >= keep.sum(-1, keepdim=True)).repeat_interleave(block, -1)
        cand.masked_fill_(unkept, n_points)  # -> the masked padding slot
        dist = distances(ids, cand)  # [B * G, T, P]
        top = dist.topk(k, dim=-1, largest=False, sorted=True).indices.flatten(1)  # [B * G, T * k]
        best = cand.flatten(0, 1).gather(1, top).view(batch, -1)  # positions in ``padded``
        del dist
        result = p_order.gather(1, best.flatten(1)).view(batch, n_group * tile, k)
        rows_out = q_order.view(batch, n_tiles, tile).gather(1, ids.unsqueeze(-1).expand(-1, -1, tile))
        out.scatter_(1, rows_out.flatten(1).unsqueeze(-1).expand(-1, -1, k), result)
    return out


@torch.no_grad()
def _knn_tree(query: torch.Tensor, points: torch.Tensor, k: int) -> torch.Tensor:
    """Exact kNN of CPU clouds with one KD-tree per cloud (memory O(N + M k), no distance matrix)."""
    from pykdtree.kdtree import KDTree

    out = torch.empty(query.shape[0], query.shape[1], k, dtype=torch.long)
    dtype = torch.float64 if points.dtype == torch.float64 else torch.float32  # what pykdtree takes
    for b in range(query.shape[0]):
        cloud = points[b].detach().to(dtype).contiguous().numpy()
        _, index = KDTree(cloud).query(query[b].detach().to(dtype).contiguous().numpy(), k=k)
        out[b] = torch.from_numpy(index.astype("int64", copy=False)).view(query.shape[1], k)
    return out


def knn_indices(query: torch.Tensor, points: torch.Tensor, k: int, chunk: int | None = KNN_CHUNK,
                block: int | None = KNN_BLOCK, tree: bool = True) -> torch.Tensor:
    """Indices [B, M, k] (int64) of the ``k`` nearest ``points`` [B, N, 3] to every ``query`` [B, M, 3],
    nearest first.

    CPU tensors (with ``tree``, the default) are searched with a KD-tree; otherwise, as follows.

    ``chunk`` queries are processed at a time; ``chunk=None`` is the dense version (all M x N distances at
    once). With ``block`` (the default; ``None`` turns it off) the search is pruned spatially (see
    :func:`_knn_pruned`; exact, the same neighbours as the dense search up to ties) when there are more than
    4 blocks of points. Candidates are ranked by the expanded squared distance ``|q|^2 + |p|^2 - 2 q.p``
    computed after centring both clouds on the points' centroid (less cancellation); ties at the k-th place
    are broken arbitrarily, so any valid k-nearest set may come back. No gradient flows through indices.
    """
    _check_clouds(query, points)
    n_points = points.shape[1]
    n_query = query.shape[1]
    if not 1 <= k <= n_points:
        raise ValueError(f"knn: k={k} must be between 1 and the number of points ({n_points})")
    if chunk is not None and tree and points.device.type == "cpu":
        return _knn_tree(query, points, k)
    centre = points.mean(dim=1, keepdim=True)
    points = points - centre
    query = query - centre
    if chunk is None:
        return _knn_dense_chunks(query, points, k, max(1, n_query))
    step = max(1, int(chunk))
    if block is not None and n_points > 4 * block:
        return _knn_pruned(query, points, k, step, int(block), min(KNN_TILE, step))
    return _knn_dense_chunks(query, points, k, step, exact=block is not None and n_points <= 4 * block)


def knn(query: torch.Tensor, points: torch.Tensor, k: int, chunk: int | None = KNN_CHUNK,
        dense: bool = False, squared: bool = False, block: int | None = KNN_BLOCK,
        tree: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest neighbours in ``points`` [B, N, 3] of every ``query`` [B, M, 3].

    Returns ``(distances [B, M, k], indices [B, M, k])``, nearest first. The distances are recomputed
    exactly from the selected pairs (``|q - p|``, differentiable in both clouds; ``squared=True`` gives
    ``|q - p|^2``). Working memory is at most ``B x chunk x N`` floats per chunk (``block``: the spatial
    pruning, ``None`` to turn it off); ``dense=True`` (or ``chunk=None``) computes the full ``B x M x N``
    matrix at once (the all-pairs reference).
    """
    indices = knn_indices(query, points, k, None if dense else chunk, block, tree)
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
    # Per step: squared distances to the newest sample axis by axis (contiguous rows, reused buffers: fresh
    # large tensors would page-fault every step), the running minimum, and its argmax in two levels (the
    # maximum of each segment of 1024 points, then the first segment holding the overall maximum and the first
    # maximal index inside it: the lowest index overall, as a plain argmax, which is not vectorised on CPU).
    segment = 1024
    n_segments = -(-n_points // segment)
    axes = [points[..., axis].contiguous() for axis in range(3)]  # 3 x [B, N]
    nearest = torch.full((batch, n_segments * segment), -1.0, dtype=points.dtype, device=device)
    nearest[:, :n_points] = float("inf")  # the padding (-1) is never the farthest
    running = nearest[:, :n_points]
    segments = nearest.view(batch, n_segments, segment)
    dist, scratch = torch.empty_like(axes[0]), torch.empty_like(axes[0])
    rows = torch.arange(batch, device=device)
    current = torch.as_tensor(start, dtype=torch.long, device=device).expand(batch).clone()
    chosen = [current]
    for _ in range(m - 1):
        centre = points[rows, current]  # [B, 3]
        torch.sub(axes[0], centre[:, :1], out=dist).square_()
        for axis in (1, 2):
            torch.sub(axes[axis], centre[:, axis:axis + 1], out=scratch)
            dist.addcmul_(scratch, scratch)
        torch.minimum(running, dist, out=running)
        seg = segments.amax(dim=2).argmax(dim=1)  # [B]
        inner = segments[rows, seg].argmax(dim=1)
        current = seg * segment + inner
        chosen.append(current)
    return torch.stack(chosen, dim=1)


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
                          chunk: int | None = KNN_CHUNK, eps: float = 1e-8,
                          block: int | None = KNN_BLOCK, tree: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse-distance weights [B, M, k] (summing to 1) of the ``k`` nearest ``points`` to each ``query``,
    with their indices [B, M, k]; ``k`` is clamped to the number of points."""
    distances, indices = knn(query, points, min(k, points.shape[1]), chunk, block=block, tree=tree)
    weights = 1.0 / (distances + eps)
    return weights / weights.sum(-1, keepdim=True), indices


def interpolate(query_xyz: torch.Tensor, xyz: torch.Tensor, features: torch.Tensor, k: int = 3,
                chunk: int | None = KNN_CHUNK, eps: float = 1e-8, block: int | None = KNN_BLOCK,
                tree: bool = True) -> torch.Tensor:
    """Features [B, N, C] at ``xyz`` [B, N, 3] interpolated to ``query_xyz`` [B, M, 3] -> [B, M, C]:
    ``sum_j w_j f_j`` over the ``k`` nearest points with ``w_j = (1 / (d_j + eps)) / sum_l 1 / (d_l + eps)``
    (PointNet++'s feature propagation; a query on a point takes that point's features). ``chunk=None``: the
    dense kNN."""
    weights, indices = interpolation_weights(query_xyz, xyz, k, chunk, eps, block, tree)
    return (gather(features, indices) * weights.unsqueeze(-1)).sum(dim=2)


def _check_clouds(query: torch.Tensor, points: torch.Tensor) -> None:
    if query.dim() != 3 or points.dim() != 3 or query.shape[-1] != points.shape[-1] or \
            query.shape[0] != points.shape[0]:
        raise ValueError(f"knn: expected query [B, M, D] and points [B, N, D], got {list(query.shape)} and "
                         f"{list(points.shape)}")
