"""harness.pointops against brute-force definitions; the point_transformer and ndf encoders: hand-checked
attention and sampling, the restructured attention and transition down against their direct formulas (outputs,
gradients, BN statistics), shapes, stage sizes, permutation equivariance, parameter counts, trainability."""
from __future__ import annotations

import copy
import itertools

import pytest
import torch

from harness import pointops
from harness.data import DatasetInfo
from harness_plugins.encoders.ndf import SPEC as NDF_SPEC
from harness_plugins.encoders.ndf.model import NDFEncoder, voxelise
from harness_plugins.encoders.ndf.sampling import DISPLACEMENT_ORDER, FeatureVolumes, sample_features
from harness_plugins.encoders.point_transformer import SPEC as PT_SPEC
from harness_plugins.encoders.point_transformer.model import (PRUNE_FROM_PAIRS, KnnSettings, PointTransformerLayer,
                                                             PointTransformerUNet, TransitionDown)

INFO = DatasetInfo(name="toy_rooms", modalities=("points",), targets=("udf", "semantic"), classes=())


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def build(spec, profile: str | None = None, **overrides):
    fields = dict(spec.profiles[profile]) if profile else {}
    fields.update(overrides)
    return spec.build(spec.config(**fields), INFO)


# ----------------------------------------------------------------------------------------------- pointops


def brute_knn(query, points, k):
    """Sorted distances [B, M, k] by explicit differences (float64)."""
    dist = (query.double().unsqueeze(2) - points.double().unsqueeze(1)).norm(dim=-1)
    return dist.sort(dim=-1).values[..., :k]


@pytest.mark.parametrize("chunk,block,tree", [(1, None, False), (7, None, False), (None, None, False),
                                              (7, 32, False), (8, 4, False), (64, 3, False), (7, 4, True)])
def test_knn_matches_brute_force_on_different_clouds(chunk, block, tree):
    """Plain chunks, the dense matrix, small clouds (exact differences), the spatially pruned search and the
    KD-tree."""
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(3, 60, 3, generator=gen) * torch.tensor([1.0, 2.0, 0.5])  # three different clouds
    query = torch.rand(3, 25, 3, generator=gen)
    dist, idx = pointops.knn(query, points, 5, chunk=chunk, block=block, tree=tree)
    assert dist.shape == idx.shape == (3, 25, 5) and idx.dtype == torch.long
    torch.testing.assert_close(dist.double(), brute_knn(query, points, 5), atol=1e-5, rtol=0)
    # the indices point at points that far away, in their own cloud
    direct = (pointops.gather(points, idx) - query.unsqueeze(2)).norm(dim=-1)
    torch.testing.assert_close(direct, dist)
    assert (idx.sort(-1).values.diff(dim=-1) > 0).all()  # distinct
    sq, idx_sq = pointops.knn(query, points, 5, chunk=chunk, squared=True, tree=tree)
    torch.testing.assert_close(sq, dist.square(), atol=1e-6, rtol=1e-5)
    dense_dist, _ = pointops.knn(query, points, 5, dense=True)
    torch.testing.assert_close(dense_dist, dist)


@pytest.mark.parametrize("k", [1, 6, 40])
@pytest.mark.parametrize("tree", [False, True])
def test_pruned_knn_and_kd_tree_are_exact_on_hard_clouds(k, tree):
    """The pruned search (tiny blocks and tiles) and the KD-tree against float64 brute force: per-cloud scales,
    two tight clusters far from the origin and from each other (the expanded |q|^2 + |p|^2 - 2q.p form swaps
    near-equal neighbours there), queries from another cloud and outside the points' box, k up to most of the
    cloud."""
    gen = torch.Generator().manual_seed(11)
    cluster = torch.randn(2, 150, 3, generator=gen) * 0.01
    clouds = torch.stack([
        torch.rand(300, 3, generator=gen) * torch.tensor([5.0, 0.1, 1.0]),
        torch.cat([cluster[0], cluster[1] + 3.0]) + 100.0,
        torch.randn(300, 3, generator=gen).mul(0.3).round(decimals=1),  # many exact ties
    ])
    queries = torch.stack([torch.rand(90, 3, generator=gen) * 6 - 0.5,
                           torch.cat([cluster[0, :45] + 100.001, torch.rand(45, 3, generator=gen) * 8 + 98]),
                           torch.randn(90, 3, generator=gen)])
    for query in (queries, clouds):
        dist, idx = pointops.knn(query, clouds, k, chunk=32, block=8, tree=tree)
        torch.testing.assert_close(dist.double(), brute_knn(query, clouds, k), atol=2e-6, rtol=1e-6)
        direct = (pointops.gather(clouds, idx) - query.unsqueeze(2)).norm(dim=-1)
        torch.testing.assert_close(direct, dist)
        assert (idx.sort(-1).values.diff(dim=-1) > 0).all()


def test_morton_codes_interleave_bits():
    cells = torch.tensor([[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [2, 0, 0], [1023, 1023, 1023]]])
    codes = pointops.morton_codes(cells.float(), torch.zeros(1, 1, 3), torch.full((1, 1, 3), 1023.0))
    assert codes.tolist() == [[0, 1, 2, 4, 7, 8, 2 ** 30 - 1]]


def test_knn_ties_on_a_lattice():
    """Integer lattice points: an inner node has 1 neighbour at 0, 6 at 1, 12 at sqrt(2) (any 3 of those 12
    complete its 10 nearest); the corner has 1 at 0, 3 at 1, 3 at sqrt(2), 1 at sqrt(3), 3 at 2 (any 2 of them).
    The distances are forced whatever the choice among ties."""
    axis = torch.arange(5.0)
    lattice = torch.cartesian_prod(axis, axis, axis).unsqueeze(0).repeat(2, 1, 1)
    lattice[1] = lattice[1].flip(0)  # the second cloud lists the nodes in another order
    query = torch.tensor([[[2.0, 2.0, 2.0], [0.0, 0.0, 0.0]]]).repeat(2, 1, 1)
    dist, idx = pointops.knn(query, lattice, 10, chunk=1, tree=False)
    for pruned_or_tree in ({"block": 4, "tree": False}, {"tree": True}):
        torch.testing.assert_close(pointops.knn(query, lattice, 10, chunk=1, **pruned_or_tree)[0], dist)
    expected = torch.tensor([0.0] + [1.0] * 6 + [2 ** 0.5] * 3)
    torch.testing.assert_close(dist[:, 0], expected.expand(2, -1))
    torch.testing.assert_close(dist[:, 1], torch.tensor([0.0, 1, 1, 1] + [2 ** 0.5] * 3 + [3 ** 0.5, 2, 2]).expand(2, -1))
    assert (pointops.gather(lattice, idx[:, :, :1]) == query.unsqueeze(2)).all()  # the node itself first
    assert all(len(set(row.tolist())) == 10 for row in idx.reshape(-1, 10))


def test_knn_distance_gradient_is_finite_on_a_point():
    points = torch.rand(1, 20, 3)
    query = points[:, :4].clone().requires_grad_(True)  # queries sitting on points
    dist, _ = pointops.knn(query, points, 3)
    dist.sum().backward()
    assert torch.isfinite(query.grad).all()


def test_knn_rejects_bad_k():
    with pytest.raises(ValueError, match="k=9"):
        pointops.knn(torch.rand(1, 2, 3), torch.rand(1, 8, 3), 9)


def brute_fps(points: torch.Tensor, m: int) -> list[int]:
    chosen = [0]
    for _ in range(m - 1):
        best, best_d = None, -1.0
        for j in range(points.shape[0]):
            d = min(float((points[j] - points[c]).norm()) for c in chosen)
            if d > best_d:
                best, best_d = j, d
        chosen.append(best)
    return chosen


def test_fps_on_a_hand_case():
    """Points on a line at 0, 1, 10, 4, 6: from 0 the farthest is 10; then 4 and 6 are both 4 away from
    {0, 10} (the lower index, 4, wins); then 6 (2 away) before 1 (1 away)."""
    x = torch.tensor([0.0, 1.0, 10.0, 4.0, 6.0])
    points = torch.stack([x, torch.zeros(5), torch.zeros(5)], dim=-1).unsqueeze(0)
    assert pointops.farthest_point_sampling(points, 5).tolist() == [[0, 2, 3, 4, 1]]
    assert pointops.farthest_point_sampling(points, 3, start=2).tolist() == [[2, 0, 3]]


def test_fps_matches_brute_force_per_cloud():
    gen = torch.Generator().manual_seed(1)
    points = torch.rand(3, 40, 3, generator=gen)
    got = pointops.farthest_point_sampling(points, 12)
    for b in range(3):
        assert got[b].tolist() == brute_fps(points[b], 12)
    starts = torch.tensor([5, 0, 39])
    assert pointops.farthest_point_sampling(points, 2, start=starts)[:, 0].tolist() == [5, 0, 39]


def test_fps_over_several_segments():
    """More than 1024 points (the argmax runs per segment of 1024, the last one padded): same as stepping
    the definition with plain tensor ops, per cloud."""
    gen = torch.Generator().manual_seed(12)
    points = torch.rand(2, 2100, 3, generator=gen)
    points[1, 1500:] *= 3.0  # the second cloud's farthest points sit in the last segments
    got = pointops.farthest_point_sampling(points, 8)
    for b in range(2):
        chosen = [0]
        nearest = (points[b] - points[b, 0]).norm(dim=-1)
        for _ in range(7):
            chosen.append(int(nearest.argmax()))
            nearest = torch.minimum(nearest, (points[b] - points[b, chosen[-1]]).norm(dim=-1))
        assert got[b].tolist() == chosen


def test_gather_and_its_gradient():
    features = torch.randn(2, 6, 4, requires_grad=True)
    idx = torch.tensor([[[0, 5], [5, 5]], [[1, 2], [3, 0]]])
    out = pointops.gather(features, idx)
    assert out.shape == (2, 2, 2, 4)
    for b, i, j in itertools.product(range(2), range(2), range(2)):
        assert torch.equal(out[b, i, j], features[b, idx[b, i, j]])
    out.sum().backward()
    assert features.grad[0, 5].tolist() == [3.0] * 4 and features.grad[0, 1].tolist() == [0.0] * 4


def test_interpolate_is_inverse_distance_weighting():
    gen = torch.Generator().manual_seed(2)
    xyz = torch.rand(2, 30, 3, generator=gen)
    features = torch.randn(2, 30, 5, generator=gen)
    query = torch.rand(2, 9, 3, generator=gen)
    out = pointops.interpolate(query, xyz, features, k=3, chunk=4)
    for b in range(2):
        for i in range(9):
            d = (xyz[b] - query[b, i]).norm(dim=-1)
            near = d.argsort()[:3]
            w = 1.0 / (d[near] + 1e-8)
            expected = (features[b, near] * (w / w.sum()).unsqueeze(-1)).sum(0)
            torch.testing.assert_close(out[b, i], expected, atol=1e-5, rtol=1e-5)
    on_points = pointops.interpolate(xyz[:, :4], xyz, features)
    torch.testing.assert_close(on_points, features[:, :4], atol=1e-5, rtol=1e-5)
    two = pointops.interpolate(query, xyz[:, :2], features[:, :2])  # k clamped to the 2 points there are
    assert two.shape == (2, 9, 5)


# ---------------------------------------------------------------------------------------- point_transformer


def attention_by_loops(layer: PointTransformerLayer, xyz, x, nbrs):
    """The vector attention written per point and neighbour (eval mode: BN is a fixed affine map)."""
    batch, n, k = nbrs.shape
    c, s = layer.channels, layer.share_planes
    out = torch.zeros(batch, n, c)
    for b, i in itertools.product(range(batch), range(n)):
        q = layer.to_q(x[b, i])
        logits, values = [], []
        for j in nbrs[b, i].tolist():
            delta = layer.pos(xyz[b, j] - xyz[b, i])
            logits.append(layer.weight(layer.to_k(x[b, j]) - q + delta))
            values.append(layer.to_v(x[b, j]) + delta)
        w = torch.stack(logits).softmax(dim=0)  # [k, C/s]
        for channel in range(c):
            out[b, i, channel] = sum(w[t, channel % (c // s)] * values[t][channel] for t in range(k))
    return out


def test_vector_attention_matches_its_definition():
    torch.manual_seed(3)
    layer = PointTransformerLayer(8, share_planes=4).eval()
    xyz, x = torch.rand(2, 7, 3), torch.randn(2, 7, 8)
    nbrs = pointops.knn_indices(xyz, xyz, 4)
    with torch.no_grad():
        torch.testing.assert_close(layer(xyz, x, nbrs), attention_by_loops(layer, xyz, x, nbrs), atol=1e-5, rtol=1e-5)


def test_vector_attention_with_constant_logits_is_the_mean_of_values_plus_positions():
    """gamma's last layer zeroed: every logit is 0, the softmax uniform, y_i = mean_j (v_j + delta_ij)."""
    torch.manual_seed(4)
    layer = PointTransformerLayer(8, share_planes=2).eval()
    torch.nn.init.zeros_(layer.weight[-1].weight)
    torch.nn.init.zeros_(layer.weight[-1].bias)
    xyz, x = torch.rand(1, 5, 3), torch.randn(1, 5, 8)
    nbrs = torch.tensor([[[0, 1, 2], [1, 1, 1], [2, 3, 4], [3, 0, 0], [4, 2, 0]]])
    with torch.no_grad():
        out = layer(xyz, x, nbrs)
        v = layer.to_v(x)
        for i, row in enumerate(nbrs[0].tolist()):
            expected = torch.stack([v[0, j] + layer.pos(xyz[0, j] - xyz[0, i]) for j in row]).mean(0)
            torch.testing.assert_close(out[0, i], expected, atol=1e-6, rtol=1e-5)
        # identical neighbours (point 1 three times): exactly v_1 + delta_11 = v_1 + theta(0)
        torch.testing.assert_close(out[0, 1], v[0, 1] + layer.pos(torch.zeros(3)), atol=1e-6, rtol=1e-5)


def attention_direct(layer: PointTransformerLayer, xyz, x, nbrs):
    """The paper's vector attention as written, every [B, N, k, C] term formed: delta_ij = theta(p_j - p_i),
    w_ij = softmax_j(gamma(k_j - q_i + delta_ij)), y_i = sum_j w_ij (.) (v_j + delta_ij), channel g*C/s + c
    taking weight c. BN layers see the same rows as in the layer (one forward, one statistics update each)."""
    q, k, v = layer.to_q(x), layer.to_k(x), layer.to_v(x)
    delta = layer.pos(pointops.gather(xyz, nbrs) - xyz.unsqueeze(2))
    w = layer.weight(pointops.gather(k, nbrs) - q.unsqueeze(2) + delta).softmax(dim=2)
    return (w.repeat(1, 1, 1, layer.share_planes) * (pointops.gather(v, nbrs) + delta)).sum(dim=2)


def transition_down_direct(td: TransitionDown, xyz, x):
    """Transition down as written: Linear+BN+ReLU of the grouped [p_j - p_i, f_j], then the max over j."""
    if td.stride == 1:
        return xyz, td.mlp(x)
    centres = pointops.gather(xyz, pointops.farthest_point_sampling(xyz, max(1, xyz.shape[1] // td.stride)))
    idx = td.knn.indices(centres, xyz, min(td.neighbours, xyz.shape[1]))
    grouped = torch.cat([pointops.gather(xyz, idx) - centres.unsqueeze(2), pointops.gather(x, idx)], dim=-1)
    return centres, td.mlp(grouped).max(dim=2).values


def assert_same_training_step(model, direct, run):
    """``run(model)`` and ``run(direct)`` (its copy) agree in outputs, parameter gradients and BN buffers (running
    statistics updated by exactly one forward: num_batches_tracked == 1)."""
    torch.testing.assert_close(run(model), run(direct), atol=1e-10, rtol=1e-8)
    for (name, p), (_, q) in zip(model.named_parameters(), direct.named_parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-10, rtol=1e-8, msg=name)
    buffers = dict(direct.named_buffers())
    for name, b in model.named_buffers():
        torch.testing.assert_close(b, buffers[name], atol=1e-12, rtol=1e-10, msg=name)
        if name.endswith("num_batches_tracked"):
            assert b.item() == 1, name


def test_vector_attention_equals_the_direct_formula_in_training():
    """The restructured layer (no [B, N, k, C] tensor) against the formula, in float64 and training mode: the same
    outputs, gradients (parameters and input features) and BN running statistics, over 2 clouds."""
    torch.manual_seed(9)
    layer = PointTransformerLayer(16, share_planes=4).double()
    direct = copy.deepcopy(layer)
    xyz = torch.rand(2, 30, 3, dtype=torch.float64)
    x = torch.randn(2, 30, 16, dtype=torch.float64)
    nbrs = pointops.knn_indices(xyz, xyz, 6)
    grads = []

    def run(module):
        features = x.clone().requires_grad_()
        out = attention_direct(module, xyz, features, nbrs) if module is direct else module(xyz, features, nbrs)
        (out * torch.linspace(-1, 1, 16, dtype=torch.float64)).square().sum().backward()
        grads.append(features.grad)
        return out

    assert_same_training_step(layer, direct, run)
    torch.testing.assert_close(grads[0], grads[1], atol=1e-10, rtol=1e-8)


def test_point_transformer_equals_the_direct_formulas_in_training(monkeypatch):
    """The whole U-Net (attention and transition down restructured) against the same network running the direct
    formulas: outputs, every parameter's gradient and every BN running statistic after one training step."""
    torch.manual_seed(10)
    net = PointTransformerUNet(channels=[8, 16, 16], blocks=[1, 2, 1], neighbours=[4, 6, 6], strides=[1, 4, 4],
                               share_planes=4).double()
    direct = copy.deepcopy(net)
    # 128 -> 32 -> 8 points, so no stage's neighbourhoods (k = 6) hold the whole cloud: there the rows j = i of
    # theta's BN sit exactly at the batch mean, i.e. at the ReLU's kink, where rounding decides the gradient
    points = torch.rand(2, 128, 3, dtype=torch.float64)
    target = torch.randn(2, 128, 8, dtype=torch.float64)

    def run(model):
        with monkeypatch.context() as patch:
            if model is direct:
                patch.setattr(PointTransformerLayer, "forward", attention_direct)
                patch.setattr(TransitionDown, "forward", transition_down_direct)
            _, features = model(points)
            (features - target).square().mean().backward()
        return features

    assert_same_training_step(net, direct, run)


def test_point_transformer_smoke_shapes_stages_and_encoding():
    net = build(PT_SPEC, "smoke")
    assert net.encoding.kind == "points" and net.encoding.dim == PT_SPEC.profiles["smoke"]["channels"][0]
    points = torch.rand(2, 100, 3) - 0.5
    (xyz, features), stages = net(points, return_stages=True)
    assert torch.equal(xyz, points) and features.shape == (2, 100, net.encoding.dim)
    assert [s[0].shape[1] for s in stages] == [100, 25, 6]  # N // 1, // 4, // 4 (floored)
    assert [s[1].shape[-1] for s in stages] == [8, 16, 16]
    out_xyz, out_f = net(points)
    assert out_f.shape == (2, 100, net.encoding.dim) and torch.isfinite(out_f).all()


def test_point_transformer_is_reusable_with_other_sizes():
    net = PointTransformerUNet(in_channels=5, channels=[8, 8, 16], blocks=[0, 1, 2], neighbours=[3, 5, 5],
                               strides=[1, 2, 3], share_planes=2, global_context=False)
    xyz = torch.rand(1, 40, 3)
    (_, out), stages = net(xyz, torch.randn(1, 40, 5), return_stages=True)
    assert out.shape == (1, 40, 8) and [s[0].shape[1] for s in stages] == [40, 20, 6]
    with pytest.raises(ValueError, match="one entry per stage"):
        PointTransformerUNet(channels=[8, 16], blocks=[1], neighbours=[4, 4], strides=[1, 4])
    with pytest.raises(ValueError, match="input channels"):
        net(xyz)  # features default to xyz: 3 channels, not 5


def test_point_transformer_is_permutation_equivariant():
    """FPS starts at point 0, so permutations keeping point 0 first give the same sampled cloud; the features
    must follow the permutation (eval mode: batch statistics would differ only by float summation order)."""
    torch.manual_seed(5)
    net = build(PT_SPEC, "smoke").eval()
    points = torch.rand(2, 64, 3)
    perm = torch.cat([torch.zeros(1, dtype=torch.long), torch.randperm(63) + 1])
    with torch.no_grad():
        _, f = net(points)
        _, f_perm = net(points[:, perm])
    torch.testing.assert_close(f_perm, f[:, perm], atol=1e-5, rtol=1e-4)


def test_point_transformer_dense_knn_gives_the_same_network_output():
    torch.manual_seed(6)
    net = build(PT_SPEC, "smoke", knn_chunk=7).eval()
    points = torch.rand(1, 80, 3)
    with torch.no_grad():
        _, chunked = net(points)
        net.dense_knn = True
        _, dense = net(points)
    torch.testing.assert_close(chunked, dense)


def test_knn_settings_prune_only_large_searches_and_agree_with_dense():
    """Below PRUNE_FROM_PAIRS query-point pairs the network's chunked kNN runs plain chunks, above it the spatially
    pruned search: either way the neighbours' distances are those of the all-pairs search."""
    torch.manual_seed(11)

    def distances(settings: KnnSettings, cloud: torch.Tensor) -> torch.Tensor:
        return (pointops.gather(cloud, settings.indices(cloud, cloud, 8)) - cloud.unsqueeze(2)).norm(dim=-1)

    for n in (300, 4200):  # 9e4 and 1.8e7 pairs
        assert (n * n >= PRUNE_FROM_PAIRS) == (n == 4200)
        cloud = torch.rand(1, n, 3)
        dense = distances(KnnSettings(dense=True), cloud)
        torch.testing.assert_close(distances(KnnSettings(chunk=64, tree=False), cloud), dense)
        torch.testing.assert_close(distances(KnnSettings(chunk=64), cloud), dense)  # the KD-tree


def test_point_transformer_paper_parameter_count():
    """~7.8M in the paper (Section 3 of the contextualising paper); the contextualiser's shrunk U-Net ~0.38M."""
    assert n_params(build(PT_SPEC)) == 7_756_932
    ctx = PointTransformerUNet(in_channels=32, channels=[32, 32, 64, 64, 128], blocks=[1] * 5)
    assert 360_000 < n_params(ctx) < 400_000


def test_point_transformer_trains():
    """A real behaviour check: a per-point regression target (a smooth function of the neighbourhood) is
    learned, the loss falls well below where it started."""
    torch.manual_seed(7)
    net = build(PT_SPEC, "smoke")
    head = torch.nn.Linear(net.encoding.dim, 1)
    points = torch.rand(4, 96, 3) - 0.5
    target = torch.sin(4 * points[..., 0]) * points[..., 1] + points[..., 2].abs()
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=1e-2)
    losses = []
    for _ in range(40):
        _, f = net(points)
        loss = (head(f).squeeze(-1) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-5:]) < 0.3 * losses[0]


# ---------------------------------------------------------------------------------------------------- ndf


def test_voxelise_marks_the_nearest_nodes():
    points = torch.tensor([[[-0.5, -0.5, -0.5], [0.5, -0.5, -0.5], [0.5, -0.5, -0.5], [-0.5, 0.2, 0.5],
                            [0.9, 0.0, 0.0]]])
    grid = voxelise(points, 5)  # nodes at -0.5, -0.25, 0, 0.25, 0.5; axes (z, y, x)
    assert grid.shape == (1, 1, 5, 5, 5) and grid.sum() == 4  # the duplicate counts once
    assert grid[0, 0, 0, 0, 0] == 1 and grid[0, 0, 0, 0, 4] == 1  # x varies along the last axis
    assert grid[0, 0, 4, 3, 0] == 1  # (x, y, z) = (-0.5, 0.25, 0.5): y 0.2 rounds to node 3
    assert grid[0, 0, 2, 2, 4] == 1  # outside the cube: the border node


def ramp(resolution: int, coeffs: tuple[float, float, float, float]) -> torch.Tensor:
    """Volume [R, R, R] (axes z, y, x) holding a*x + b*y + c*z + e at the nodes of [-0.5, 0.5]^3."""
    nodes = torch.linspace(-0.5, 0.5, resolution)
    z, y, x = torch.meshgrid(nodes, nodes, nodes, indexing="ij")
    a, b, c, e = coeffs
    return a * x + b * y + c * z + e


def test_sampling_is_exact_on_linear_ramps_in_the_documented_order():
    """Trilinear interpolation reproduces a linear function exactly: every column of the output can be
    predicted from the query, the displacement order (0, -x, +x, -y, +y, -z, +z) and the volume/channel."""
    ramps = [(1.0, 0.0, 0.0, 0.0), (0.0, 2.0, 0.0, 1.0), (0.3, -0.5, 1.5, 0.0)]
    coarse = torch.stack([ramp(9, ramps[0]), ramp(9, ramps[1])]).unsqueeze(0).repeat(2, 1, 1, 1, 1)
    fine = ramp(17, ramps[2]).view(1, 1, 17, 17, 17).repeat(2, 1, 1, 1, 1)
    d, h = 0.1, 0.5
    query = torch.rand(2, 11, 3, generator=torch.Generator().manual_seed(8)) * 0.6 - 0.3
    out = sample_features(FeatureVolumes([coarse, fine], displacement=d, half_extent=h), query)
    assert out.shape == (2, 11, 3 * 7)
    offsets = torch.tensor(DISPLACEMENT_ORDER, dtype=torch.float32) * d * h  # scene units
    for col, (channel, j) in enumerate(itertools.product(range(3), range(7))):
        a, b, c, e = ramps[channel]
        p = query + offsets[j]
        torch.testing.assert_close(out[..., col], a * p[..., 0] + b * p[..., 1] + c * p[..., 2] + e,
                                   atol=1e-5, rtol=1e-5)
    # outside the cube the border value is used
    outside = sample_features([coarse], torch.tensor([[[0.9, 0.0, 0.0]]]).repeat(2, 1, 1), displacement=0.0)
    torch.testing.assert_close(outside[0, 0, 0], torch.tensor(0.5))


def test_ndf_smoke_shapes_and_encoding():
    net = build(NDF_SPEC, "smoke")
    points = torch.rand(2, 300, 3) - 0.5
    volumes = net(points)
    assert net.encoding.kind == "grid" and net.encoding.dim == (1 + 4 + 8 + 8) * 7
    assert [tuple(v.shape) for v in volumes] == [(2, 1, 16, 16, 16), (2, 4, 16, 16, 16), (2, 8, 8, 8, 8),
                                                 (2, 8, 4, 4, 4)]
    assert net.volume_sizes() == [16, 16, 8, 4]
    assert torch.equal(volumes[0], voxelise(points, 16))
    features = sample_features(volumes, torch.rand(2, 13, 3) - 0.5)
    assert features.shape == (2, 13, net.encoding.dim)
    with pytest.raises(ValueError, match="too small"):
        NDFEncoder(resolution=8, channels=[4, 4, 4, 4, 4])


def test_ndf_paper_sizes():
    net = build(NDF_SPEC)
    assert net.encoding.dim == 3479  # (1 + 16 + 32 + 64 + 128 + 128 + 128) * 7, NDF's feature size
    assert net.volume_sizes() == [256, 256, 128, 64, 32, 16, 8]
    assert n_params(net) == 2_642_784  # 11 convolutions + batch norms; 84.5 Mbit at 32 bits


def test_ndf_trains():
    """Features sampled from the grid encoding learn the distance to the input surface (a plane)."""
    torch.manual_seed(9)
    net = build(NDF_SPEC, "smoke")
    head = torch.nn.Sequential(torch.nn.Linear(net.encoding.dim, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    gen = torch.Generator().manual_seed(10)
    planes = torch.rand(4, 1, generator=gen) * 0.6 - 0.3  # one plane z = c per sample
    xy = torch.rand(4, 400, 2, generator=gen) - 0.5
    points = torch.cat([xy, planes.expand(-1, 400).unsqueeze(-1)], dim=-1)
    query = torch.rand(4, 200, 3, generator=gen) - 0.5
    target = (query[..., 2] - planes).abs()
    opt = torch.optim.Adam(list(net.parameters()) + list(head.parameters()), lr=3e-3)
    losses = []
    for _ in range(40):
        pred = head(sample_features(net(points), query)).squeeze(-1)
        loss = (pred - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-5:]) < 0.5 * losses[0]
