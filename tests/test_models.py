"""The ONet ResNet-PointNet encoder and CBN occupancy decoder: shapes, sizes, init and trainability."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo
from harness_plugins.decoders.occupancy import SPEC as DECODER_SPEC
from harness_plugins.encoders.pointnet import SPEC as ENCODER_SPEC

INFO = DatasetInfo(name="toy", modalities=("points",), targets=("occupancy",), classes=("sphere",))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def encoder(**overrides):
    return ENCODER_SPEC.build(ENCODER_SPEC.config(**overrides), INFO)


def decoder(code_size: int, **overrides):
    return DECODER_SPEC.build(DECODER_SPEC.config(**overrides), EncodingInfo("global", code_size), INFO)


def encoder_params(h: int, c: int) -> int:
    """ResnetPointnet from its layer sizes."""
    fc_pos = 3 * 2 * h + 2 * h
    block = (2 * h * h + h) + (h * h + h) + 2 * h * h  # fc_0 2h->h, fc_1 h->h, shortcut 2h->h without bias
    fc_c = h * c + c
    return fc_pos + 5 * block + fc_c


def decoder_params(h: int, c: int, blocks: int) -> int:
    """DecoderCBatchNorm from its layer sizes (batch-norm running stats are buffers, not parameters)."""
    cbn = 2 * (c * h + h)  # gamma and beta 1x1 convs c->h
    conv = h * h + h
    fc_p = 3 * h + h
    fc_out = h + 1
    return fc_p + blocks * (2 * cbn + 2 * conv) + cbn + fc_out


@pytest.mark.parametrize("profile", [None, "smoke", "quick"])
def test_specs_build_with_every_profile(profile):
    enc_over = dict(ENCODER_SPEC.profiles[profile]) if profile else {}
    dec_over = dict(DECODER_SPEC.profiles[profile]) if profile else {}
    enc = encoder(**enc_over)
    cfg = ENCODER_SPEC.config(**enc_over)
    assert enc.encoding == EncodingInfo(kind="global", dim=cfg.code_size)
    dec = DECODER_SPEC.build(DECODER_SPEC.config(**dec_over), enc.encoding, INFO)
    assert n_params(enc) == encoder_params(cfg.hidden, cfg.code_size)
    dcfg = DECODER_SPEC.config(**dec_over)
    assert n_params(dec) == decoder_params(dcfg.hidden, cfg.code_size, dcfg.blocks)


def test_paper_parameter_counts():
    enc, dec = encoder(), decoder(512)
    assert n_params(enc) == encoder_params(512, 512) == 6_825_472
    assert n_params(dec) == decoder_params(256, 512, 5) == 3_548_417


def test_config_defaults_are_paper_sizes_and_structured_config_compatible():
    from omegaconf import OmegaConf

    assert dataclasses.asdict(ENCODER_SPEC.config()) == {"hidden": 512, "code_size": 512}
    assert dataclasses.asdict(DECODER_SPEC.config()) == {"hidden": 256, "blocks": 5}
    for spec in (ENCODER_SPEC, DECODER_SPEC):
        conf = OmegaConf.structured(spec.config)
        assert OmegaConf.to_object(conf) == spec.config()
        assert spec.version == "1" and "Occupancy Networks" in spec.citation


def test_structured_config_builds():
    from omegaconf import OmegaConf

    enc = ENCODER_SPEC.build(OmegaConf.merge(OmegaConf.structured(ENCODER_SPEC.config),
                                             ENCODER_SPEC.profiles["smoke"]), INFO)
    assert enc(torch.randn(2, 10, 3)).shape == (2, 16)


def test_output_shapes():
    enc, dec = encoder(hidden=16, code_size=24), decoder(24, hidden=8, blocks=2)
    points, query = torch.randn(3, 50, 3), torch.randn(3, 70, 3)
    code = enc(points)
    assert code.shape == (3, 24)
    local, global_code = enc.encode_points(points)
    assert local.shape == (3, 50, 16) and torch.equal(global_code, code)
    assert dec(query, code).shape == (3, 70)


def test_cbn_decoder_with_several_outputs_keeps_the_class_axis():
    from harness_plugins.decoders.occupancy.model import CBNDecoder

    dec = CBNDecoder(24, hidden=8, blocks=2, outputs=4)
    assert dec(torch.randn(3, 70, 3), torch.randn(3, 24)).shape == (3, 70, 4)


def test_decoder_rejects_non_global_encodings():
    with pytest.raises(ValueError, match=r"'points'.*\['global'\]"):
        DECODER_SPEC.build(DECODER_SPEC.config(), EncodingInfo("points", 32), INFO)


def test_encoder_is_permutation_invariant():
    torch.manual_seed(0)
    enc = encoder(hidden=32, code_size=16)
    # Give fc_1 nonzero weights so every block contributes, not only the zero-initialised identity path.
    for block in enc.blocks:
        torch.nn.init.normal_(block.fc_1.weight, std=0.1)
    points = torch.randn(2, 100, 3)
    shuffled = points[:, torch.randperm(100)]
    torch.testing.assert_close(enc(shuffled), enc(points), atol=1e-5, rtol=0)


def test_fresh_decoder_ignores_the_code():
    """fc_1 weights are zero and the CBN gamma/beta convs have zero weights, so each block adds a constant
    (fc_1's bias) and the final CBN is plain batch norm: the output cannot depend on the code at init."""
    torch.manual_seed(0)
    dec = decoder(32, hidden=16, blocks=3)
    for block in dec.blocks:
        assert torch.count_nonzero(block.fc_1.weight) == 0
        for cbn in (block.bn_0, block.bn_1):
            assert torch.count_nonzero(cbn.conv_gamma.weight) == 0 and torch.all(cbn.conv_gamma.bias == 1)
            assert torch.count_nonzero(cbn.conv_beta.weight) == 0 and torch.count_nonzero(cbn.conv_beta.bias) == 0
    query = torch.randn(2, 40, 3)
    x = torch.randn(2, 40, 16)  # features are points-last
    block = dec.blocks[0]
    torch.testing.assert_close(block(x, torch.randn(2, 32)), x + block.fc_1.bias)
    dec.train()
    torch.testing.assert_close(dec(query, torch.randn(2, 32)), dec(query, torch.randn(2, 32)))
    dec.eval()
    torch.testing.assert_close(dec(query, torch.randn(2, 32)), dec(query, torch.randn(2, 32)))


def test_encoder_decoder_overfit_one_sphere():
    """Queries in [-0.5, 0.5]^3 against a radius-0.5 sphere are about half inside, so the constant
    predictor's BCE is ~0.69; reaching < 0.2 needs the decoder to learn the shape."""
    torch.manual_seed(0)
    enc, dec = encoder(hidden=32, code_size=32), decoder(32, hidden=32, blocks=3)
    surface = F.normalize(torch.randn(1, 256, 3), dim=2) * 0.5
    query = torch.rand(1, 512, 3) - 0.5
    occupancy = (query.norm(dim=2) < 0.5).float()
    optimizer = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    for _ in range(100):
        loss = F.binary_cross_entropy_with_logits(dec(query, enc(surface)), occupancy)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2
    # Gradients reach every encoder parameter through the code (via the CBN gamma/beta convs).
    assert all(p.grad.abs().sum() > 0 for p in enc.parameters())
