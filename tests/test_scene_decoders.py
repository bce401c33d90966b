"""The issue-5 scene decoders (udf, semantic, contextualiser), their losses and the uncertainty weighting."""
from __future__ import annotations

import math

import pytest
import torch

from harness.data import IGNORE_INDEX, DatasetInfo
from harness.encoding import EncodingInfo
from harness.losses import UncertaintyWeighting, part_loss, semantic_loss, udf_loss
from harness_plugins.decoders import contextualiser as ctx_pkg
from harness_plugins.decoders import semantic as sem_pkg
from harness_plugins.decoders import udf as udf_pkg
from harness_plugins.decoders.attentive import AttentiveInterpolation
from harness_plugins.decoders.contextualiser.model import build as build_contextualiser
from harness_plugins.decoders.semantic.model import build as build_semantic
from harness_plugins.decoders.udf.model import build as build_udf
from harness_plugins.encoders import ndf as ndf_pkg
from harness_plugins.encoders import point_transformer as pt_pkg
from harness_plugins.encoders.ndf.model import build as build_ndf
from harness_plugins.encoders.point_transformer.model import build as build_point_transformer

CLASSES = ("wall", "floor", "chair", "table", "door")
INFO = DatasetInfo(name="rooms", modalities=("points",), targets=("udf", "semantic"), classes=(),
                   semantic_classes=CLASSES)


def smoke(pkg, **overrides):
    """The component's config at its smoke profile (plus overrides)."""
    spec = pkg.SPEC
    return spec.config(**{**spec.profiles["smoke"], **overrides})


def cloud(batch=2, n=64, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, 3, generator=g) - 0.5, torch.randn(batch, n, dim, generator=g)


# ---------------------------------------------------------------------------------------- losses

def test_udf_loss_clamps_both_sides_sums_over_points_and_averages_over_batch():
    pred = torch.tensor([[0.05, 0.30, 0.02], [0.00, 0.12, 0.50]])
    target = torch.tensor([[0.00, 0.20, 0.02], [0.10, 0.05, 0.09]])
    # clamped at 0.1: pred [[.05, .1, .02], [0, .1, .1]], target [[0, .1, .02], [.1, .05, .09]]
    # |diff| summed per sample: 0.05 and 0.1 + 0.05 + 0.01 = 0.16; mean over the batch 0.105
    assert udf_loss(pred, target).item() == pytest.approx(0.105, abs=1e-7)
    unclamped = (0.05 + 0.1 + 0.0 + 0.1 + 0.07 + 0.41) / 2
    assert udf_loss(pred, target, clamp=1.0).item() == pytest.approx(unclamped, abs=1e-6)
    # a prediction beyond the clamp for a target beyond it costs nothing, and gets no gradient
    p = torch.tensor([[0.4, 0.05]], requires_grad=True)
    loss = udf_loss(p, torch.tensor([[0.3, 0.0]]))
    loss.backward()
    assert loss.item() == pytest.approx(0.05)
    assert p.grad.tolist() == [[0.0, 1.0]]


def test_semantic_loss_is_cross_entropy_over_labelled_points():
    logits = torch.tensor([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]],
                           [[0.0, 1.0, 0.0], [9.0, -9.0, 3.0]]])
    labels = torch.tensor([[0, 2], [1, IGNORE_INDEX]])

    def ce(row, label):
        return math.log(sum(math.exp(v) for v in row)) - row[label]

    expected = (ce([2.0, 0.0, -1.0], 0) + ce([0.5, 0.5, 0.5], 2) + ce([0.0, 1.0, 0.0], 1)) / 3
    assert semantic_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    # the ignored point does not count, whatever its logits
    logits[1, 1] = torch.tensor([-50.0, 50.0, 0.0])
    assert semantic_loss(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    assert semantic_loss is part_loss  # one implementation
    assert semantic_loss(logits, torch.full_like(labels, IGNORE_INDEX)).item() == 0.0


# ---------------------------------------------------------------------------------------- attentive interpolation

def test_identical_neighbour_features_come_out_unchanged_and_weights_sum_to_one():
    torch.manual_seed(0)
    xyz, _ = cloud(n=50, dim=6)
    value = torch.randn(6)
    features = value.expand(2, 50, 6).clone()
    interp = AttentiveInterpolation(6, k=4, position_channels=5, attention_hidden=7)
    query = torch.rand(2, 30, 3) - 0.5
    out, weights, index = interp(query, xyz, features, return_weights=True)
    assert out.shape == (2, 30, 6 + 5) and weights.shape == index.shape == (2, 30, 4)
    assert torch.allclose(out[..., :6], value.expand(2, 30, 6), atol=1e-6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 30), atol=1e-6)
    assert weights.std() > 0  # the weights do vary: the invariant does not rest on uniform attention
    # the neighbours are the 4 nearest encoded points
    brute = torch.cdist(query, xyz).topk(4, largest=False).indices.sort(-1).values
    assert torch.equal(index.sort(-1).values, brute)


def test_attentive_interpolation_ignores_the_order_of_the_encoded_points():
    torch.manual_seed(1)
    xyz, features = cloud(n=80, dim=8, seed=1)
    interp = AttentiveInterpolation(8, k=4, position_channels=8, attention_hidden=8)
    query = torch.rand(2, 40, 3) - 0.5
    perm = torch.randperm(80)
    assert torch.allclose(interp(query, xyz, features), interp(query, xyz[:, perm], features[:, perm]), atol=1e-5)


def test_query_on_an_encoded_point_with_sharp_attention_takes_its_features():
    xyz, features = cloud(n=40, dim=4, seed=2)
    interp = AttentiveInterpolation(4, k=4, position_channels=3, attention_hidden=0)
    with torch.no_grad():  # encoded position channel 0 = |q - p|; score = -1000 |q - p|
        interp.position[0].weight.zero_()
        interp.position[0].bias.zero_()
        interp.position[0].weight[0, 0] = 1.0
        interp.score[0].weight.zero_()
        interp.score[0].bias.zero_()
        interp.score[0].weight[0, 4] = -1000.0
    pick = torch.tensor([3, 17, 29])
    query = xyz[:, pick]
    out, weights, index = interp(query, xyz, features, return_weights=True)
    assert torch.equal(index[..., 0], pick.expand(2, 3))
    assert torch.allclose(weights[..., 0], torch.ones(2, 3), atol=1e-6)
    assert torch.allclose(out[..., :4], features[:, pick], atol=1e-5)


# ---------------------------------------------------------------------------------------- udf / semantic decoders

def test_udf_on_points_is_non_negative_and_differentiable():
    torch.manual_seed(3)
    xyz, features = cloud(n=64, dim=8, seed=3)
    decoder = build_udf(smoke(udf_pkg), EncodingInfo("points", 8), INFO)
    query = torch.rand(2, 100, 3) - 0.5
    out = decoder(query, (xyz, features.requires_grad_()))
    assert out.shape == (2, 100) and (out >= 0).all()
    assert torch.allclose(out, torch.full_like(out, 0.005))  # starts inside (0, 0.1): see start_inside
    udf_loss(out, torch.rand(2, 100) * 0.1).backward()
    assert all(p.grad is not None for p in decoder.parameters())
    with torch.no_grad():  # the output is a ReLU: never negative, whatever the weights
        decoder.head.mlp[-1].bias.fill_(-1.0)
        decoder.head.mlp[-1].weight.normal_()
        assert (decoder(query, (xyz, features)) >= 0).all()
        assert (decoder(query, (xyz, features)) == 0).any()


@pytest.mark.parametrize("straight_through", [False, True])
def test_udf_predictions_pushed_below_zero_come_back_only_with_the_straight_through_gradient(straight_through):
    """Every prediction starts clamped at 0 by the ReLU (the state Adam at lr 1e-3 drives a fresh decoder into
    on rooms): the plain ReLU passes no gradient and the field stays 0; the straight-through one recovers.
    The forward value is the ReLU either way."""
    torch.manual_seed(5)
    xyz, features = cloud(n=64, dim=8, seed=5)
    decoder = build_udf(smoke(udf_pkg, straight_through=straight_through), EncodingInfo("points", 8), INFO)
    with torch.no_grad():
        decoder.head.mlp[-1].bias.fill_(-0.02)
    query = torch.rand(2, 100, 3) - 0.5
    target = 0.002 + 0.02 * torch.rand(2, 100)
    raw = decoder.head(query, (xyz, features)).squeeze(-1)
    assert torch.equal(decoder(query, (xyz, features)), torch.relu(raw)) and (raw < 0).all()
    optimiser = torch.optim.Adam(decoder.parameters(), lr=1e-3)
    for _ in range(30):
        optimiser.zero_grad()
        udf_loss(decoder(query, (xyz, features)), target).backward()
        optimiser.step()
    out = decoder.eval()(query, (xyz, features))
    if straight_through:
        assert (out > 0).float().mean() > 0.9
    else:
        assert (out == 0).all() and decoder.head.mlp[-1].bias.item() == pytest.approx(-0.02)


def test_udf_on_the_ndf_grid_encoding():
    torch.manual_seed(4)
    encoder = build_ndf(smoke(ndf_pkg), None)
    decoder = build_udf(smoke(udf_pkg), encoder.encoding, INFO)
    points = torch.rand(2, 200, 3) - 0.5
    query = torch.rand(2, 50, 3) - 0.5
    out = decoder(query, encoder(points))
    assert out.shape == (2, 50) and (out >= 0).all()
    convs = [m for m in decoder.net if isinstance(m, torch.nn.Conv1d)]
    assert [c.in_channels for c in convs] == [ndf_pkg.feature_dim(smoke(ndf_pkg).channels), 16, 16]
    assert [c.out_channels for c in convs] == [16, 16, 1]
    assert [c.out_channels for c in build_udf(udf_pkg.UDFConfig(), EncodingInfo("grid", 3479)).net
            if isinstance(c, torch.nn.Conv1d)] == [512, 256, 256, 1]  # NDF's decoder widths
    udf_loss(out, torch.rand(2, 50) * 0.1).backward()
    assert encoder.stages[0][0].weight.grad is not None


def test_semantic_decoder_logits_and_vocabulary():
    xyz, features = cloud(n=64, dim=8, seed=5)
    decoder = build_semantic(smoke(sem_pkg), EncodingInfo("points", 8), INFO)
    logits = decoder(torch.rand(2, 30, 3) - 0.5, (xyz, features))
    assert logits.shape == (2, 30, len(CLASSES))
    with pytest.raises(ValueError, match="semantic vocabulary"):
        build_semantic(smoke(sem_pkg), EncodingInfo("points", 8),
                       DatasetInfo(name="shapes", modalities=("points",), targets=("udf",), classes=()))
    with pytest.raises(ValueError, match="accepts"):
        build_semantic(smoke(sem_pkg), EncodingInfo("grid", 8), INFO)


# ---------------------------------------------------------------------------------------- contextualiser

def test_contextualiser_appends_context_to_the_unchanged_frozen_features():
    torch.manual_seed(6)
    xyz, features = cloud(n=64, dim=8, seed=6)
    features.requires_grad_()
    for kind in ("unet", "mlp"):
        config = smoke(ctx_pkg, kind=kind, context_features=3)
        module = build_contextualiser(config, EncodingInfo("points", 8), INFO)
        assert module.encoding == EncodingInfo("points", 11)
        out_xyz, out = module((xyz, features))
        assert out_xyz is xyz and out.shape == (2, 64, 11)
        assert torch.equal(out[..., :8], features.detach())
        # the encoder stays frozen: no gradient reaches the input features; the module itself trains
        decoder = build_semantic(smoke(sem_pkg), module.encoding, INFO)
        semantic_loss(decoder(xyz[:, :20], (out_xyz, out)), torch.randint(0, 5, (2, 20))).backward()
        assert features.grad is None
        assert all(p.grad is not None for p in module.parameters())


def test_mlp_context_is_per_point_and_unet_context_sees_the_neighbourhood():
    xyz, features = cloud(batch=1, n=64, dim=8, seed=7)
    far = (xyz[0] - xyz[0, 0]).norm(dim=-1).argmax()  # the point farthest from point 0
    moved_xyz, moved = xyz.clone(), features.clone()
    moved_xyz[0, far] *= 0.5
    moved[0, far] += 5.0
    for kind, depends in (("mlp", False), ("unet", True)):
        torch.manual_seed(7)
        module = build_contextualiser(smoke(ctx_pkg, kind=kind), EncodingInfo("points", 8), INFO).eval()
        with torch.no_grad():
            before = module.context(xyz, features)[0, 0]
            after = module.context(moved_xyz, moved)[0, 0]
        assert (not torch.allclose(before, after, atol=1e-6)) == depends, kind


def point_transformer_unet_parameters(d_in, channels, blocks, share_planes=8, decoder_blocks=1, context=True):
    """Parameter count of the Point Transformer U-Net, by hand from its layers (Linear weights + biases,
    BatchNorm weight + bias; the Linear+BN pairs have no Linear bias)."""
    def lbr(c_in, c_out):  # Linear (no bias) + BN
        return c_in * c_out + 2 * c_out

    def block(c):
        g = c // share_planes
        attention = 3 * (c * c + c) + (3 * 3 + 3) + 2 * 3 + (3 * c + c) + (c * g + g) + 2 * g + (g * g + g)
        return lbr(c, c) + attention + 2 * c + c * c + 2 * c

    total, c_prev = 0, d_in
    for i, (c, b) in enumerate(zip(channels, blocks)):
        total += lbr(c_prev + (3 if i else 0), c) + b * block(c) + decoder_blocks * block(c)
        c_prev = c
    for c_fine, c_coarse in zip(channels[:-1], channels[1:]):
        total += lbr(c_coarse, c_fine) + lbr(c_fine, c_fine)
    c = channels[-1]
    return total + ((c * c + c) + lbr(2 * c, c) if context else 0)


def test_contextualiser_parameter_count_at_paper_size():
    d = pt_pkg.PointTransformerConfig().channels[0]  # 32: the paper-size encoder's feature width
    config = ctx_pkg.ContextualiserConfig()
    module = build_contextualiser(config, EncodingInfo("points", d), INFO)
    count = sum(p.numel() for p in module.parameters())
    by_hand = point_transformer_unet_parameters(d, config.channels, config.blocks) + (32 * 4 + 4)
    print(f"contextualiser at paper size (D = {d}, l = 4): {count:,} parameters (paper: about 379,000)")
    assert count == by_hand == 376_472
    assert abs(count - 379_000) / 379_000 < 0.01
    # the same formula gives the full encoder's published ~7.8M (7,756,932 with its stem of 3 inputs)
    full = pt_pkg.PointTransformerConfig()
    assert point_transformer_unet_parameters(3, full.channels, full.blocks) == 7_756_932
    shallow = build_contextualiser(ctx_pkg.ContextualiserConfig(scales=3), EncodingInfo("points", d), INFO)
    assert sum(p.numel() for p in shallow.parameters()) == \
        point_transformer_unet_parameters(d, config.channels[:3], config.blocks[:3]) + 132


def test_contextualiser_config_errors():
    with pytest.raises(ValueError, match="kind"):
        build_contextualiser(smoke(ctx_pkg, kind="gnn"), EncodingInfo("points", 8), INFO)
    with pytest.raises(ValueError, match="scales"):
        build_contextualiser(smoke(ctx_pkg, scales=4), EncodingInfo("points", 8), INFO)
    with pytest.raises(ValueError, match="first stride"):
        build_contextualiser(smoke(ctx_pkg, strides=[4, 4, 4]), EncodingInfo("points", 8), INFO)


# ---------------------------------------------------------------------------------------- end to end

def test_point_transformer_and_udf_fit_the_distance_to_a_plane():
    torch.manual_seed(0)
    encoder = build_point_transformer(pt_pkg.PointTransformerConfig(**pt_pkg.SPEC.profiles["smoke"]), None)
    # starting at 0.05, near this field's best constant (|z| for |z| < 0.15)
    decoder = build_udf(smoke(udf_pkg, hidden=[32, 32], output_bias=0.05), encoder.encoding, INFO)
    g = torch.Generator().manual_seed(0)
    points = torch.rand(2, 128, 3, generator=g) - 0.5
    points[..., 2] = 0.0  # a scan of the plane z = 0
    query = torch.rand(2, 128, 3, generator=g) - 0.5
    query[..., 2] *= 0.3
    target = query[..., 2].abs()
    optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-2)
    losses = []
    for _ in range(150):
        loss = udf_loss(decoder(query, encoder(points)), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    # the start is ~4.5; with torch seeds 0-5 the last loss is 0.13-0.38
    print(f"udf fit: loss {losses[0]:.3f} -> {min(losses[-10:]):.3f}")
    assert min(losses[-10:]) < losses[0] / 3


# ---------------------------------------------------------------------------------------- uncertainty weighting

def test_uncertainty_weighting_formula_and_gradients():
    weighting = UncertaintyWeighting(["udf", "semantic"])
    assert weighting.log_vars.tolist() == [0.0, 0.0]
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.5, -1.0]))
    l1, l2 = torch.tensor(2.0), torch.tensor(0.3)
    expected = math.exp(-0.5) * 2.0 + 0.5 + math.exp(1.0) * 0.3 - 1.0
    assert weighting([l1, l2]).item() == pytest.approx(expected, rel=1e-6)
    assert weighting({"semantic": l2, "udf": l1}).item() == pytest.approx(expected, rel=1e-6)
    assert weighting.weights() == pytest.approx({"udf": math.exp(-0.5), "semantic": math.exp(1.0)})
    with pytest.raises(ValueError):
        weighting([l1])
    # d total / d s_i = 1 - exp(-s_i) L_i; the task losses get weight exp(-s_i)
    fresh = UncertaintyWeighting(2)
    a, b = torch.tensor(4.0, requires_grad=True), torch.tensor(0.25, requires_grad=True)
    fresh([a, b]).backward()
    assert fresh.log_vars.grad.tolist() == pytest.approx([1 - 4.0, 1 - 0.25])
    assert (a.grad.item(), b.grad.item()) == pytest.approx((1.0, 1.0))
    # with fixed losses, s_i moves to its minimiser log L_i
    optimiser = torch.optim.Adam(fresh.parameters(), lr=0.05)
    for _ in range(400):
        optimiser.zero_grad()
        fresh([torch.tensor(4.0), torch.tensor(0.25)]).backward()
        optimiser.step()
    assert fresh.log_vars.tolist() == pytest.approx([math.log(4.0), math.log(0.25)], abs=0.02)


def test_weighted_semantic_loss_is_the_weighted_mean_over_labelled_points():
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0]]])
    labels = torch.tensor([[0, 1, IGNORE_INDEX, 2]])
    weight = torch.tensor([1.0, 2.0, 4.0])
    terms = -torch.log_softmax(logits[0], -1)[[0, 1, 3], [0, 1, 2]]  # the labelled points' cross-entropies
    expected = (1.0 * terms[0] + 2.0 * terms[1] + 4.0 * terms[2]) / (1.0 + 2.0 + 4.0)
    assert semantic_loss(logits, labels, weight).item() == pytest.approx(expected.item(), rel=1e-6)
    assert semantic_loss(logits, labels, torch.ones(3)).item() == pytest.approx(terms.mean().item(), rel=1e-6)


def test_inverse_log_frequency_weights():
    from harness.losses import inverse_log_frequency

    labels = torch.tensor([0, 0, 0, 1, IGNORE_INDEX])  # frequencies 3/4, 1/4 and 0 (the ignored label left out)
    expected = [1 / math.log(1.2 + 0.75), 1 / math.log(1.2 + 0.25), 1 / math.log(1.2)]
    assert inverse_log_frequency(labels, 3).tolist() == pytest.approx(expected, rel=1e-6)


def test_relative_positions_divide_the_offsets_by_the_relative_scale():
    from harness_plugins.decoders.attentive import relative_positions

    query = torch.tensor([[[0.1, 0.2, 0.3]]], dtype=torch.float64)
    neighbours = torch.tensor([[[[0.1, 0.2, 0.305], [0.103, 0.196, 0.3]]]], dtype=torch.float64)
    distances = (query.unsqueeze(2) - neighbours).norm(dim=-1)  # 0.005 and 0.005
    r = relative_positions(query, neighbours, distances, scale=0.01)
    assert r[0, 0, :, 0].tolist() == pytest.approx([0.5, 0.5])  # |q - p| / s
    assert r[0, 0, 0, 1:4].tolist() == pytest.approx([0.0, 0.0, -0.5])  # (q - p) / s
    assert r[0, 0, 1, 1:4].tolist() == pytest.approx([-0.3, 0.4, 0.0])
    assert r[0, 0, 1, 4:].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.103, 0.196, 0.3])  # q and p as they are
