"""The compressor plugins (bfp, dsconv, cosconv, chebconv) and the optimised BFP quantiser, against hand-computed
vectors and plainly written slow references."""
from __future__ import annotations

import copy
import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from harness.compression import model_size
from harness.quantisation import bfp_quantise
from harness.registry import default_registry
from harness.specs import Kind
from harness_plugins.compressors.bfp import BFPConfig
from harness_plugins.compressors.bfp.layer import BFPLayer
from harness_plugins.compressors.bfp.layer import build as build_bfp
from harness_plugins.compressors.chebconv import ChebConvConfig
from harness_plugins.compressors.cosconv import CosConvConfig
from harness_plugins.compressors.dsconv import DSConvConfig
from harness_plugins.compressors.dsconv.layer import DSConvLayer, dsconv_quantise
from harness_plugins.compressors.dsconv.layer import build as build_dsconv
from harness_plugins.compressors.series import (CHEBYSHEV, COSINE, SeriesConv, build_chebconv, build_cosconv,
                                                chebyshev_init, cosine_init, fit_gd, separable_basis, series_kernel)


# --- a plain, slow BFP reference: one block at a time, exact rational arithmetic -------------------------------

def _round_fraction(value: Fraction, rounding: str) -> int:
    if rounding == "even":
        return round(value)  # Python rounds a Fraction half to even
    floor = math.floor(abs(value) + Fraction(1, 2))
    return floor if value >= 0 else -floor


def reference_bfp(x: torch.Tensor, bits: int, block: int = 32, axis: int = 1, exponent_bits: int = 7,
                  rounding: str = "even") -> torch.Tensor:
    m = bits - 1
    low, high = -(2 ** (exponent_bits - 1)), 2 ** (exponent_bits - 1) - 1
    limit = 2 ** m - 1
    moved = x.detach().double().movedim(axis, -1)
    rows = moved.reshape(-1, moved.shape[-1]).tolist()
    out = []
    for row in rows:
        result = []
        for start in range(0, len(row), block):
            values = row[start:start + block]
            largest = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
            exponent = math.frexp(largest)[1] - 1 if largest > 0 else low
            exponent = min(max(exponent, low), high)
            scale = Fraction(2) ** (m - 1 - exponent)
            for v in values:
                if not math.isfinite(v):
                    result.append(v)
                    continue
                q = min(max(_round_fraction(Fraction(v) * scale, rounding), -limit), limit)
                result.append(float(q / scale) if q else math.copysign(0.0, v))
        out.append(result)
    # q / scale is exact in float64 here (few mantissa bits, moderate exponents): one rounding to x's dtype
    return torch.tensor(out, dtype=torch.float64).reshape(moved.shape).movedim(-1, axis).to(x.dtype)


def assert_same(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("shape,axis,block", [
    ((2, 64, 3, 3), 1, 32),  # divides: the fast view path
    ((2, 40, 5), 1, 32),  # 40 = 32 + 8: a shorter last block
    ((3, 7), 1, 4),  # 7 = 4 + 3
    ((5, 6, 2), 0, 2),  # axis 0
    ((4, 3, 10), -1, 4),  # the last axis (Linear inputs), not dividing
    ((4, 3, 10), 2, 1),  # block size 1: per-element floating point
    ((6, 9), 1, 100),  # one block longer than the axis
])
@pytest.mark.parametrize("bits,exponent_bits,rounding", [(8, 7, "even"), (4, 7, "away"), (2, 3, "even"),
                                                         (5, 2, "away")])
def test_bfp_matches_the_plain_reference(shape, axis, block, bits, exponent_bits, rounding):
    generator = torch.Generator().manual_seed(hash((shape, axis, block, bits)) % 2 ** 31)
    x = torch.randn(shape, generator=generator) * torch.exp2(torch.randint(-12, 12, shape, generator=generator))
    x.view(-1)[::5] = 0.0
    for dtype in (torch.float32, torch.float64):
        value = x.to(dtype)
        assert_same(bfp_quantise(value, bits, block=block, axis=axis, exponent_bits=exponent_bits,
                                 rounding=rounding),
                    reference_bfp(value, bits, block, axis, exponent_bits, rounding))


def test_bfp_ties_at_every_scale_round_as_configured():
    # E = 0, bits 8 -> scale 2^6: k/2 / 64 are exact ties k/2 after scaling
    ties = torch.tensor([[1.0] + [k / 128 for k in range(-61, 63, 2)]], dtype=torch.float64)
    for rounding in ("even", "away"):
        assert_same(bfp_quantise(ties, 8, block=64, rounding=rounding), reference_bfp(ties, 8, 64, 1, 7, rounding))
    # half away from zero must not round 0.5 - ulp up (floor(|y| + 0.5) does, in float arithmetic)
    below = torch.tensor([[1.0, float(np.nextafter(np.float32(0.5 / 64), np.float32(0)))]], dtype=torch.float32)
    assert bfp_quantise(below, 8, block=2, rounding="away")[0, 1] == 0.0


def test_bfp_subnormal_block_maxima_and_the_exponent_range():
    tiny = torch.tensor([[2.0 ** -149, 3 * 2.0 ** -148, 1e-40, 0.0], [1e-39, -2e-39, 5e-40, 1e-45]])
    for exponent_bits in (7, 8, 9):  # 7: E clamps at -64 (all round to zero); 8, 9: the subnormals' own exponent
        for bits in (2, 4, 8):
            assert_same(bfp_quantise(tiny, bits, block=4, exponent_bits=exponent_bits),
                        reference_bfp(tiny, bits, 4, 1, exponent_bits, "even"))
    smallest = torch.tensor([[3 * 2.0 ** -148, 2.0 ** -149]])  # E = -147: both kept exactly with 9 exponent bits
    assert torch.equal(bfp_quantise(smallest, 8, block=2, exponent_bits=9), smallest)
    assert bfp_quantise(smallest, 8, block=2, exponent_bits=7).abs().sum() == 0  # E clamps to -64
    doubles = torch.tensor([[2.0 ** -1074, 2.0 ** -1060, 2.0 ** -1030], [1e-310, 3e-310, 0.0]], dtype=torch.float64)
    assert_same(bfp_quantise(doubles, 6, block=3, exponent_bits=10), reference_bfp(doubles, 6, 3, 1, 10, "even"))
    huge = torch.tensor([[3e38, 1e30, -2e38, 1.0]])
    for exponent_bits in (3, 7, 8):  # beyond the range: E clamps to 2^(e-1) - 1, magnitudes clamp to 2^m - 1
        assert_same(bfp_quantise(huge, 4, block=4, exponent_bits=exponent_bits),
                    reference_bfp(huge, 4, 4, 1, exponent_bits, "even"))
    half = torch.tensor([[1000.0, 0.3, -7.5, 2e-5]], dtype=torch.float16)  # scales beyond float16's range
    assert_same(bfp_quantise(half, 8, block=2), reference_bfp(half, 8, 2, 1, 7, "even"))


def test_bfp_nan_and_inf_blocks():
    x = torch.tensor([[math.nan, 0.3, math.inf, -0.6, 1.0, 0.26],
                      [math.nan, math.nan, -math.inf, math.inf, 0.0, 0.0]])
    for block in (1, 2, 4, 32):
        out = bfp_quantise(x, 4, block=block)
        assert_same(out, reference_bfp(x, 4, block, 1, 7, "even"))
    out = bfp_quantise(x, 4, block=2)
    assert math.isnan(out[0, 0]) and out[0, 1] == 0.3125 and out[0, 2] == math.inf and out[1, 3] == math.inf


def test_bfp_layouts_and_result():
    x = torch.randn(4, 24, 5, 6)
    expected = reference_bfp(x, 6, 8, 1, 7, "even")
    assert_same(bfp_quantise(x.to(memory_format=torch.channels_last), 6, block=8), expected)
    assert_same(bfp_quantise(x.transpose(1, 3), 6, block=8, axis=3), expected.transpose(1, 3).contiguous())
    leaf = x.clone().requires_grad_(True)
    out = bfp_quantise(leaf, 6, block=8)
    assert out.is_contiguous() and not out.requires_grad and leaf.grad is None
    assert bfp_quantise(torch.zeros(0, 4), 4).shape == (0, 4)
    with pytest.raises(TypeError, match="floating-point"):
        bfp_quantise(torch.ones(2, 2, dtype=torch.int32), 4)


# --- DSConv ------------------------------------------------------------------------------------------------

def test_dsconv_hand_computed_block_with_negative_largest_weight():
    # bits 3: 2^(b-1) = 4; a = -1.0: q = round(-w * 4 / -1) = round(4 w) = [2, -4, 1, 3.2 -> 3]
    w = torch.tensor([[0.5, -1.0, 0.25, 0.8]])
    q, alpha, dequantised = dsconv_quantise(w, 3, block=4)
    assert q.tolist() == [[2, -4, 1, 3]]
    assert alpha.flatten().tolist() == pytest.approx([(1.0 + 4.0 + 0.25 + 2.4) / (4 + 16 + 1 + 9)])
    torch.testing.assert_close(dequantised, alpha[..., None][0] * q.float())


def test_dsconv_positive_largest_weight_ties_and_clamping():
    # a = +1.0 (the first of the tie 1.0 / -1.0): -w * 4 = [-4, 4, -0.5, 1.5] -> half to even [-4, 4, 0, 2];
    # +4 clamps to 2^(b-1) - 1 = 3
    w = torch.tensor([[1.0, -1.0, 0.125, -0.375]], dtype=torch.float64)
    q, alpha, _ = dsconv_quantise(w, 3, block=4)
    assert q.tolist() == [[-4, 3, 0, 2]]
    assert alpha.item() == pytest.approx((-4.0 - 3.0 - 0.75) / (16 + 9 + 4), rel=1e-15)
    # negated, a = -1.0 comes first: the same integers, alpha negated
    q, negated, _ = dsconv_quantise(-w, 3, block=4)
    assert q.tolist() == [[-4, 3, 0, 2]] and negated.item() == -alpha.item()


def test_dsconv_blocks_not_dividing_the_channels_and_all_zero_blocks():
    # 6 input channels, block 4: [w0..w3] and [w4, w5 | zero padding]; the second block is all zero
    w = torch.tensor([[0.2, -0.4, 0.1, 0.3, 0.0, 0.0]])
    q, alpha, dequantised = dsconv_quantise(w, 4, block=4)  # 2^(b-1) = 8, a = -0.4: q = round(20 w)
    assert q.tolist() == [[4, -8, 2, 6, 0, 0]]
    assert alpha.shape == (1, 2) and alpha[0, 1] == 0.0
    assert dequantised[0, 4:].tolist() == [0.0, 0.0]


def test_dsconv_scale_is_the_exact_least_squares_solution():
    w = torch.randn(3, 37, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    for bits in (1, 2, 5, 8):
        q, alpha, dequantised = dsconv_quantise(w, bits, block=8)
        for o in range(3):
            for k in range(2):
                for g, start in enumerate(range(0, 37, 8)):
                    wb, qb = w[o, start:start + 8, k].numpy(), q[o, start:start + 8, k].double().numpy()
                    solution = np.linalg.lstsq(qb[:, None], wb, rcond=None)[0][0]
                    assert alpha[o, k, g].item() == pytest.approx(solution, rel=1e-12, abs=1e-15)
                    assert qb.min() >= -2 ** (bits - 1) and qb.max() <= 2 ** (bits - 1) - 1
                    assert qb[np.argmax(np.abs(wb))] == -2 ** (bits - 1)  # the largest weight is exactly -2^(b-1)
        torch.testing.assert_close(dequantised, alpha.movedim(-1, 1).repeat_interleave(8, 1)[:, :37] * q)


def test_dsconv_one_bit_keeps_the_weights_of_the_largest_ones_sign():
    # 2^(b-1) = 1, a = -1.0: q = clamp(round(w), -1, 0) = [0, -1, 0 (tie -0.5 to even), -1, 0]
    w = torch.tensor([[0.6, -1.0, -0.5, -0.7, 0.2]])
    q, alpha, dequantised = dsconv_quantise(w, 1, block=8)
    assert q.tolist() == [[0, -1, 0, -1, 0]]
    torch.testing.assert_close(dequantised, torch.tensor([[0.0, -0.85, 0.0, -0.85, 0.0]]))
    with pytest.raises(ValueError, match="1 to 8 bits"):
        dsconv_quantise(w, 9)
    one_bit = DSConvLayer(nn.Conv1d(4, 2, 3), 1).eval()  # its inputs: BFP at 2 bits, the fewest BFP holds
    x = torch.randn(1, 4, 7)
    with torch.no_grad():
        expected = F.conv1d(bfp_quantise(x, 2, block=32), reference_dsconv_weight(one_bit.weight.double(), 1, 32)
                            .float(), one_bit.bias)
        torch.testing.assert_close(one_bit(x), expected)


def reference_dsconv_weight(weight: torch.Tensor, bits: int, block: int) -> torch.Tensor:
    """DSConv written plainly: a loop over (output channel, kernel position, block)."""
    out = torch.zeros_like(weight)
    half = 2 ** (bits - 1)
    flat_in = weight.reshape(*weight.shape[:2], -1)
    flat_out = out.view(flat_in.shape)
    for o in range(weight.shape[0]):
        for k in range(flat_in.shape[2]):
            for start in range(0, weight.shape[1], block):
                values = flat_in[o, start:start + block, k].tolist()
                a = max(values, key=abs)
                if a == 0:
                    continue
                q = [min(max(round(-v * half / a), -half), half - 1) for v in values]
                alpha = sum(v * i for v, i in zip(values, q)) / sum(i * i for i in q)
                flat_out[o, start:start + block, k] = torch.tensor([alpha * i for i in q])
    return out


def test_dsconv_layer_in_evaluation_is_the_conv_with_independently_quantised_weights():
    torch.manual_seed(0)
    conv = nn.Conv2d(40, 6, 3, padding=1, stride=2, bias=True)
    x = torch.randn(2, 40, 9, 9)
    layer = DSConvLayer(conv, 4, block=32).eval()
    expected_weight = reference_dsconv_weight(conv.weight.detach().double(), 4, 32).float()
    expected = F.conv2d(bfp_quantise(x, 4, block=32, axis=1), expected_weight, conv.bias, stride=2, padding=1)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)
        first = layer._weight_cache.value
        layer(x)
        assert layer._weight_cache.value is first  # cached while the weight is unchanged
        conv.weight.mul_(-2.0)  # an in-place change (an optimiser step, load_state_dict) invalidates it
        expected_weight = reference_dsconv_weight(conv.weight.detach().double(), 4, 32).float()
        torch.testing.assert_close(layer(x), F.conv2d(bfp_quantise(x, 4, block=32, axis=1), expected_weight,
                                                      conv.bias, stride=2, padding=1), rtol=1e-5, atol=1e-5)
    linear = DSConvLayer(nn.Linear(10, 3), 2, block=4).eval()
    tokens = torch.randn(5, 7, 10)
    with torch.no_grad():
        expected = F.linear(bfp_quantise(tokens, 2, block=4, axis=-1),
                            reference_dsconv_weight(linear.weight.detach().double(), 2, 4).float(), linear.bias)
        torch.testing.assert_close(linear(tokens), expected, rtol=1e-5, atol=1e-6)


def test_bfp_layer_in_evaluation_is_the_layer_on_independently_quantised_weights_and_inputs():
    torch.manual_seed(0)
    conv = nn.Conv3d(12, 4, 3, padding=1, groups=2)
    x = torch.randn(2, 12, 5, 5, 5)
    layer = BFPLayer(conv, 5, block=4, rounding="away").eval()
    with torch.no_grad():
        expected = F.conv3d(reference_bfp(x, 5, 4, 1, 7, "away"), reference_bfp(conv.weight, 5, 4, 1, 7, "away"),
                            conv.bias, padding=1, groups=2)
        torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-6)
    linear = nn.Linear(10, 3)
    tokens = torch.randn(4, 6, 10)
    weights_only = BFPLayer(linear, 3, block=8, activations=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(weights_only(tokens), F.linear(tokens, reference_bfp(linear.weight, 3, 8),
                                                                  linear.bias))
        inputs_only = BFPLayer(linear, 3, block=8, weights=False)
        torch.testing.assert_close(inputs_only(tokens), F.linear(reference_bfp(tokens, 3, 8, -1), linear.weight,
                                                                 linear.bias))


# --- small models -----------------------------------------------------------------------------------------

class Stage(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b = nn.Conv2d(c, c, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.b(torch.relu(self.a(x)))


class Net(nn.Module):
    """stem conv (3 -> 8, bias), two stages of two 3x3 convs (no bias), a 1x1 projection, a linear head."""

    compression_blocks = ("stem", "stage1", "stage2")

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.stage1 = Stage(8)
        self.stage2 = Stage(8)
        self.project = nn.Conv2d(8, 4, 1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage2(self.stage1(torch.relu(self.stem(x))))
        return self.fc(self.project(x).mean(dim=(2, 3)))


NET_PARAMETERS = (8 * 3 * 9 + 8) + 4 * (8 * 8 * 9) + (4 * 8 + 4) + (5 * 4 + 5)  # 224 + 2304 + 36 + 25 = 2589


def test_bfp_storage_is_counted_by_hand():
    net = Net()
    report = build_bfp(BFPConfig(bits="4", block=32)).compress(net)
    assert report.before.parameters == NET_PARAMETERS and report.before.bits == NET_PARAMETERS * 32
    # every layer: weights at 4 bits + one 7-bit exponent per block (one block per (output, kernel position): all
    # input-channel counts are below 32) + bias at 32
    stem = 216 * 4 + 8 * 9 * 7 + 8 * 32
    stage_conv = 576 * 4 + 8 * 9 * 7
    project = 32 * 4 + 4 * 7 + 4 * 32
    fc = 20 * 4 + 5 * 7 + 5 * 32
    assert report.after.parameters == NET_PARAMETERS
    assert report.after.bits == stem + 4 * stage_conv + project + fc
    assert [change.after.bits for change in report.layers][:2] == [stem, stage_conv]
    wide = BFPLayer(nn.Conv2d(40, 8, 3), 4, block=32)  # 40 = 32 + 8: two blocks per (output, kernel position)
    assert wide.stored_bits() == 2880 * 4 + 8 * 9 * 2 * 7 + 8 * 32
    activations_only = Net()
    assert build_bfp(BFPConfig(weights=False)).compress(activations_only).after.bits == NET_PARAMETERS * 32


def test_dsconv_storage_and_default_exemptions():
    net = Net()
    report = build_dsconv(DSConvConfig(bits="4")).compress(net)
    # the stem (first layer) and the Linear head stay float; 4 stage convs and the 1x1 projection are DSConv
    assert isinstance(net.stem, nn.Conv2d) and isinstance(net.fc, nn.Linear)
    assert [change.name for change in report.layers] == ["stage1.a", "stage1.b", "stage2.a", "stage2.b", "project"]
    stage_conv = 576 * 4 + 8 * 9 * 32  # 4 bits per weight + one 32-bit alpha per block of (output, position)
    project = 32 * 4 + 4 * 32 + 4 * 32
    assert report.after.bits == (224 + 25) * 32 + 4 * stage_conv + project
    assert report.after.parameters == report.before.parameters == NET_PARAMETERS
    wide = DSConvLayer(nn.Conv2d(40, 8, 3), 4)
    assert wide.stored_bits() == 2880 * 4 + 144 * 32 + 8 * 32
    everything = Net()
    report = build_dsconv(DSConvConfig(bits="8", exempt_first=False, linear=True)).compress(everything)
    assert len(report.layers) == 7 and isinstance(everything.fc, DSConvLayer)


def test_per_layer_and_per_block_settings_land_on_the_right_layers():
    net = Net()
    report = build_bfp(BFPConfig(bits="8 7 6 5 4 3 2")).compress(net)
    assert [(change.name, change.setting) for change in report.layers] == [
        ("stem", 8), ("stage1.a", 7), ("stage1.b", 6), ("stage2.a", 5), ("stage2.b", 4), ("project", 3), ("fc", 2)]
    assert net.stage2.b.bits == 4
    net = Net()  # blocks: stem | stage1 | stage2 | project | fc; dsconv drops the stem and skips fc
    report = build_dsconv(DSConvConfig(bits="6,4,2")).compress(net)
    assert {change.name: change.setting for change in report.layers} == {
        "stage1.a": 6, "stage1.b": 6, "stage2.a": 4, "stage2.b": 4, "project": 2}
    net = Net()  # series: the 1x1 projection and the Linear head are not eligible; 3 blocks
    report = build_cosconv(CosConvConfig(harmonics="3,2,1", fit="lstsq")).compress(net)
    assert {change.name: change.setting for change in report.layers} == {
        "stem": 3, "stage1.a": 2, "stage1.b": 2, "stage2.a": 1, "stage2.b": 1}
    assert net.stage2.a.coefficients.shape == (8, 8, 1, 1)
    with pytest.raises(ValueError, match="per-block values"):
        build_chebconv(ChebConvConfig(harmonics="3,2")).compress(Net())
    with pytest.raises(ValueError, match=r"layers \['stem'\]"):
        build_bfp(BFPConfig(bits="1 8 8 8 8 8 8")).compress(Net())
    with pytest.raises(ValueError, match="1 to 8 bits"):
        build_dsconv(DSConvConfig(bits="9")).compress(Net())
    with pytest.raises(ValueError, match="dsconv: Sequential has no layers to compress .*linear=true"):
        build_dsconv(DSConvConfig()).compress(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)))
    with pytest.raises(ValueError, match="cosconv: Sequential has no layers to compress .*kernel size above 1"):
        build_cosconv(CosConvConfig()).compress(nn.Sequential(nn.Conv2d(3, 4, 1)))
    exempted = Net()
    report = build_bfp(BFPConfig(exempt_first=True, exempt_last=True, layer_types=["Conv2d"])).compress(exempted)
    assert [change.name for change in report.layers] == ["stage1.a", "stage1.b", "stage2.a", "stage2.b"]


# --- series kernels ---------------------------------------------------------------------------------------

def numpy_basis(family: str, k: int, n: int) -> np.ndarray:
    """The per-axis basis written from the definitions: cos(a x) on [0.2 pi, 0.8 pi], T_a(x) = cos(a arccos x)."""
    if family == "cosine":
        x = np.linspace(0.2 * np.pi, 0.8 * np.pi, k)
        return np.cos(np.outer(x, np.arange(n)))
    x = np.linspace(-1.0, 1.0, k)
    return np.cos(np.outer(np.arccos(np.clip(x, -1, 1)), np.arange(n)))


def series_weight(coefficients: np.ndarray, bases: list[np.ndarray]) -> np.ndarray:
    letters_k, letters_n = "xyz"[:len(bases)], "abc"[:len(bases)]
    spec = f"oi{letters_n}," + ",".join(f"{k}{n}" for k, n in zip(letters_k, letters_n)) + f"->oi{letters_k}"
    return np.einsum(spec, coefficients, *bases)


CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


@pytest.mark.parametrize("family,build,config", [("cosine", build_cosconv, CosConvConfig),
                                                 ("chebyshev", build_chebconv, ChebConvConfig)])
@pytest.mark.parametrize("dims,k,n", [(1, 5, 3), (2, 3, 2), (2, 5, 4), (3, 3, 2)])
def test_a_kernel_that_is_a_low_order_series_is_recovered(family, build, config, dims, k, n):
    rng = np.random.default_rng(dims * 100 + k * 10 + n)
    coefficients = rng.normal(size=(4, 3, *(n,) * dims)) * 0.3
    weight = series_weight(coefficients, [numpy_basis(family, k, n)] * dims)
    for fit, tolerance in (("lstsq", 1e-5), ("gd", 2e-3)):
        conv = CONVS[dims](3, 4, k, padding=1)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(weight))
        model = nn.Sequential(conv)
        report = build(config(harmonics=str(n), fit=fit, fit_steps=800, fit_lr=0.02)).compress(model)
        layer = model[0]
        assert isinstance(layer, SeriesConv) and report.layers[0].setting == n
        np.testing.assert_allclose(layer.coefficients.detach().numpy(), coefficients, atol=tolerance)
        np.testing.assert_allclose(layer.kernel().detach().numpy(), weight, atol=tolerance)
        x = torch.randn(2, 3, *(k + 2,) * dims)
        with torch.no_grad():
            torch.testing.assert_close(layer(x), conv(x), atol=10 * tolerance, rtol=0)


def test_more_harmonics_than_the_kernel_is_rejected_naming_the_layer():
    net = Net()
    with pytest.raises(ValueError, match=r"layer stage1\.a \(Conv2d, kernel 3x3\) gets 4 harmonics"):
        build_cosconv(CosConvConfig(harmonics="3,4,3", fit="lstsq")).compress(net)
    anisotropic = nn.Sequential(nn.Conv3d(2, 2, (3, 5, 5)), nn.Conv2d(2, 2, (1, 3)))  # (1, 3): not eligible
    with pytest.raises(ValueError, match=r"layer 0 \(Conv3d, kernel 3x5x5\) gets 4 harmonics"):
        build_chebconv(ChebConvConfig(harmonics="4", fit="lstsq")).compress(anisotropic)
    report = build_chebconv(ChebConvConfig(harmonics="3", fit="lstsq")).compress(anisotropic)
    assert [change.name for change in report.layers] == ["0"]


def test_series_storage_is_counted_by_hand():
    net = Net()
    report = build_chebconv(ChebConvConfig(harmonics="2", fit="lstsq")).compress(net)
    # stem: 8 x 3 pairs x 2^2 coefficients + 8 bias; stage convs: 8 x 8 x 4; the projection and fc unchanged
    stem, stage_conv = 8 * 3 * 4 + 8, 8 * 8 * 4
    assert report.after.parameters == stem + 4 * stage_conv + 36 + 25
    assert report.after.bits == report.after.parameters * 32
    assert report.parameter_change_pct == pytest.approx(100 * (report.after.parameters - NET_PARAMETERS)
                                                        / NET_PARAMETERS)
    quantised = Net()
    report = build_cosconv(CosConvConfig(harmonics="2", fit="lstsq", coefficient_bits=4)).compress(quantised)
    assert report.after.bits == (8 * 3 * 4 + 4 * stage_conv) * (4 + 7) + 8 * 32 + (36 + 25) * 32
    video = nn.Sequential(nn.Conv3d(3, 4, 3, groups=1), nn.Conv3d(4, 8, 3, groups=2, bias=False))
    report = build_cosconv(CosConvConfig(harmonics="2", fit="lstsq")).compress(video)
    assert model_size(video).parameters == 4 * 3 * 8 + 4 + 8 * 2 * 8


def test_series_starting_points_follow_the_paper():
    weight = torch.randn(16, 4, 3, 3)
    start = chebyshev_init(weight, (16, 4, 2, 2))
    torch.testing.assert_close(start[:, :, 0, 0], weight.mean(dim=(2, 3)))
    assert start[:, :, 1:, :].abs().sum() == 0 and start[:, :, :, 1:].abs().sum() == 0
    big = torch.zeros(256, 64, 3, 3)
    start = cosine_init(big, (256, 64, 3, 3))
    assert start.std().item() == pytest.approx(1 / math.sqrt(64 * 9), rel=0.02)
    assert COSINE.basis(3, 2)[:, 1].tolist() == pytest.approx([math.cos(0.2 * math.pi), 0.0,
                                                                math.cos(0.8 * math.pi)], abs=1e-15)
    assert CHEBYSHEV.basis(5, 4)[:, 3].tolist() == pytest.approx([4 * x ** 3 - 3 * x for x in (-1, -.5, 0, .5, 1)])


def test_gradient_descent_fit_is_adam_on_each_kernels_mean_squared_error():
    torch.manual_seed(0)
    weight = torch.randn(5, 3, 3, 4, dtype=torch.float64)
    basis = separable_basis(COSINE, (3, 4), 2)
    start = cosine_init(weight, (5, 3, 2, 2))
    coefficients = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([coefficients], lr=0.05)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, 25)
    for _ in range(25):
        loss = (series_kernel(coefficients, basis, (3, 4)) - weight).square().mean(dim=(2, 3)).sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    torch.testing.assert_close(fit_gd(weight, basis, start, 25, 0.05), coefficients.detach(), rtol=1e-12, atol=1e-12)


def test_series_layer_keeps_the_convolution_geometry_and_quantises_coefficients():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2, padding_mode="reflect")
    layer = SeriesConv(conv, 3, COSINE, fit="lstsq")  # N = k: exact
    x = torch.randn(2, 4, 11, 11)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), conv(x), atol=1e-5, rtol=0)
    quantised = SeriesConv(conv, 2, CHEBYSHEV, fit="lstsq", coefficient_bits=4).eval()
    with torch.no_grad():
        coefficients = bfp_quantise(quantised.coefficients, 4, block=1)
        basis = torch.from_numpy(numpy_basis("chebyshev", 3, 2)).float()
        kernel = torch.einsum("oiab,xa,yb->oixy", coefficients, basis, basis)
        expected = F.conv2d(F.pad(bfp_quantise(x, 4, block=1), (2, 2, 2, 2), mode="reflect"), kernel, conv.bias,
                            stride=2, dilation=2, groups=2)
        torch.testing.assert_close(quantised(x), expected, atol=1e-5, rtol=1e-5)
    assert set(layer.state_dict()) == {"coefficients", "bias"}


# --- training through the compressed layers ---------------------------------------------------------------

@pytest.mark.parametrize("name,config", [
    ("bfp", {"bits": "4"}), ("dsconv", {"bits": "3", "exempt_first": False, "linear": True}),
    ("cosconv", {"harmonics": "2", "fit_steps": 50}), ("chebconv", {"harmonics": "2", "coefficient_bits": 6,
                                                                    "fit_steps": 50})])
def test_a_training_step_reaches_the_float_parameters_and_lowers_the_loss(name, config):
    torch.manual_seed(0)
    spec = default_registry().get(Kind.COMPRESSOR, name)
    model = Net()
    spec.build(spec.config(**config)).compress(model)
    x, target = torch.randn(8, 3, 6, 6), torch.randint(0, 5, (8,))
    trained = [p for p in model.parameters()]
    before = [p.detach().clone() for p in trained]
    optimiser = torch.optim.SGD(trained, lr=0.05)
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(x), target)
        optimiser.zero_grad()
        loss.backward()
        losses.append(loss.item())
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trained)
        optimiser.step()
    assert losses[-1] < losses[0]
    assert all(not torch.equal(p, b) for p, b in zip(trained, before))
    model.eval()
    with torch.no_grad():  # the evaluation cache follows the trained weights
        fresh = copy.deepcopy(model)
        torch.testing.assert_close(model(x), fresh(x))


def test_compressors_are_registered_with_described_configs():
    registry = default_registry()
    for name in ("bfp", "dsconv", "cosconv", "chebconv"):
        spec = registry.get(Kind.COMPRESSOR, name)
        assert spec.kind == Kind.COMPRESSOR and spec.config().describe()
    assert DSConvConfig(bits="6 555 44").describe() == "bits 6 555 44, block 32"
    assert CosConvConfig(harmonics="3,3,3,2").describe() == "harmonics 3,3,3,2"
    compressor = registry.get(Kind.COMPRESSOR, "dsconv").build(DSConvConfig())
    report = compressor.compress(Net())
    assert report.after.bits < report.before.bits and report.parameter_change_pct == 0.0
