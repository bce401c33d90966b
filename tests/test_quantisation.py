"""Block floating point against hand-computed vectors."""
from __future__ import annotations

import math

import pytest
import torch

from harness.quantisation import bfp_quantise, straight_through


def q(values, **kwargs) -> list[float]:
    return bfp_quantise(torch.tensor([values], dtype=torch.float64), **kwargs)[0].tolist()


def test_hand_computed_block():
    # 4 bits: m = 3; max 1.0 -> E = 0 -> scale 2^(3-1-0) = 4: [4, 2, 1.2, -1.04] -> [4, 2, 1, -1] / 4
    assert q([1.0, 0.5, 0.3, -0.26], bits=4, block=4) == [1.0, 0.5, 0.25, -0.25]
    # max 6.0 -> E = 2 -> scale 2^(2-2) = 1; 7 is the largest magnitude (2^3 - 1)
    assert q([6.0, 2.4, -7.9, 0.49], bits=4, block=4) == [6.0, 2.0, -7.0, 0.0]


def test_ties_round_half_to_even_or_away_from_zero():
    # E = 0, scale 4: 0.625 * 4 = 2.5 and 0.375 * 4 = 1.5, -0.625 * 4 = -2.5
    assert q([1.0, 0.625, 0.375, -0.625], bits=4, block=4) == [1.0, 0.5, 0.5, -0.5]
    assert q([1.0, 0.625, 0.375, -0.625], bits=4, block=4, rounding="away") == [1.0, 0.75, 0.5, -0.75]


def test_all_zero_blocks_stay_zero_and_blocks_are_independent():
    assert q([0.0, 0.0, 1.0, 0.3], bits=4, block=2) == [0.0, 0.0, 1.0, 0.25]


def test_exponent_range_is_clamped():
    # 2 exponent bits: E in [-2, 1]. max 16 -> E = 4 clamps to 1: scale 2^(3-1-1) = 2, magnitudes up to 7 / 2
    assert q([16.0, 1.0, -3.0, 0.2], bits=4, block=4, exponent_bits=2) == [3.5, 1.0, -3.0, 0.0]
    # max 2^-6 -> E = -6 clamps to -2: scale 2^(2+2) = 16, so 2^-6 * 16 = 0.25 rounds to 0
    assert q([2.0 ** -6, 0.0], bits=4, block=2, exponent_bits=2) == [0.0, 0.0]


def test_nan_and_inf_pass_through_without_spoiling_their_block():
    out = q([math.nan, math.inf, 1.0, 0.3], bits=4, block=4)
    assert math.isnan(out[0]) and out[1] == math.inf and out[2:] == [1.0, 0.25]


def test_last_block_is_zero_padded_and_axis_is_respected():
    x = torch.tensor([[1.0, 0.3, 0.2], [0.5, 0.26, 0.1]])  # blocks along axis 0: columns of 2
    out = bfp_quantise(x, bits=4, block=2, axis=0)
    # column 0: max 1 -> scale 4: [1.0, 0.5]; column 1: max 0.3 -> E = -2 -> scale 16: 4.8 -> 5, 4.16 -> 4
    # column 2: max 0.2 -> E = -3 -> scale 32: 6.4 -> 6, 3.2 -> 3
    expected = torch.tensor([[1.0, 5 / 16, 6 / 32], [0.5, 4 / 16, 3 / 32]])
    torch.testing.assert_close(out, expected)
    odd = bfp_quantise(torch.tensor([[1.0, 0.3, 0.3]]), bits=4, block=2)  # blocks [1, .3] and [.3, pad 0]
    torch.testing.assert_close(odd, torch.tensor([[1.0, 0.25, 0.3125]]))


def test_block_size_one_is_per_element_floating_point():
    values = torch.tensor([[0.3, -5.5, 100.0]], dtype=torch.float64)
    out = bfp_quantise(values, bits=4, block=1)
    # each element relative to its own exponent: 0.3 -> E=-2, 4.8 -> 5/16; -5.5 -> E=2, scale 1, the tie
    # -5.5 rounds to even -6; 100 -> E=6, scale 1/16, 6.25 -> 6 -> 96
    assert out.tolist() == [[0.3125, -6.0, 96.0]]


def test_straight_through_gradient_and_bad_arguments():
    x = torch.tensor([[0.3, 0.7]], requires_grad=True)
    straight_through(x, bfp_quantise(x, bits=3, block=2)).sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0]]
    with pytest.raises(ValueError, match="bits=1"):
        bfp_quantise(x, bits=1)
    with pytest.raises(ValueError, match="rounding='up'"):
        bfp_quantise(x, bits=4, rounding="up")
