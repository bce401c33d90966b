"""The compressors' shared layer selection, setting strings and storage accounting (harness.compression)."""
from __future__ import annotations

import pytest
from torch import nn

from harness.compression import (CompressionReport, Settings, compress_layers, eligible_layers, exempt, model_size,
                                 parse_settings)


class Stage(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b = nn.Conv2d(c, c, 3, padding=1, bias=False)


class Net(nn.Module):
    compression_blocks = ("stem", "stage1", "stage2")

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.stage1 = Stage(4)
        self.stage2 = Stage(4)
        self.fc = nn.Linear(4, 10)


class Halved(nn.Module):
    """A stand-in compressed layer that says it stores half the weights at 8 bits."""

    def __init__(self, layer: nn.Module, setting: int) -> None:
        super().__init__()
        self.layer, self.setting = layer, setting

    def stored_parameters(self) -> int:
        return self.layer.weight.numel() // 2

    def stored_bits(self) -> int:
        return self.stored_parameters() * 8


def test_settings_strings_are_read_as_the_papers_write_them():
    assert parse_settings("6 555 44 333 22 11", "bits") == Settings((6, 5, 5, 5, 4, 4, 3, 3, 3, 2, 2, 1, 1), "layer",
                                                                     "6 555 44 333 22 11")
    assert parse_settings("6×3 5 x 2 4", "bits").values == (6, 6, 6, 5, 5, 4)
    assert parse_settings("3,3,3,2", "harmonics") == Settings((3, 3, 3, 2), "block", "3,3,3,2")
    assert parse_settings("4", "bits") == Settings((4,), "all", "4")
    assert parse_settings(8, "bits").per == "all"
    assert parse_settings("888", "bits").values == (8, 8, 8)
    for bad in ("", "4,a", "0", "3,0", "6 5b"):
        with pytest.raises(ValueError, match="bits="):
            parse_settings(bad, "bits")


def test_layers_are_found_in_order_with_their_declared_blocks():
    net = Net()
    layers = eligible_layers(net, ("Conv2d", "Linear"))
    assert [(layer.name, layer.block) for layer in layers] == [
        ("stem", 0), ("stage1.a", 1), ("stage1.b", 1), ("stage2.a", 2), ("stage2.b", 2), ("fc", 3)]
    assert [layer.name for layer in eligible_layers(net, ("Linear",))] == ["fc"]
    assert [layer.name for layer in exempt(layers, first=True, last=True)] == ["stage1.a", "stage1.b", "stage2.a",
                                                                                "stage2.b"]
    with pytest.raises(ValueError, match="Conv4d"):
        eligible_layers(net, ("Conv4d",))


def test_settings_assignment_checks_the_counts():
    layers = exempt(eligible_layers(Net(), ("Conv2d",)), first=False, last=False)
    assert parse_settings("3,2,1", "h").assign(layers, "h") == {"stem": 3, "stage1.a": 2, "stage1.b": 2,
                                                               "stage2.a": 1, "stage2.b": 1}
    assert parse_settings("54321", "b").assign(layers, "b")["stage2.b"] == 1
    with pytest.raises(ValueError, match="gives 2 per-block values .* 3 blocks: block 1: stem; block 2: stage1.a"):
        parse_settings("3,2", "h").assign(layers, "h")
    with pytest.raises(ValueError, match="gives 4 per-layer values but the model has 5 layers"):
        parse_settings("4444", "b").assign(layers, "b")


def test_storage_accounting_counts_parameters_at_32_bits_and_compressed_layers_by_their_own_figures():
    net = Net()
    plain = 3 * 4 * 9 + 4 + 2 * 4 + 4 * (4 * 4 * 9) + 4 * 10 + 10
    assert model_size(net).parameters == plain == sum(p.numel() for p in net.parameters())
    assert model_size(net).bits == 32 * plain
    layers = eligible_layers(net, ("Conv2d",))[1:]
    report = compress_layers(net, layers, {layer.name: 8 for layer in layers}, Halved)
    assert isinstance(report, CompressionReport)
    assert report.before.parameters == plain
    assert report.after.parameters == plain - 4 * 72
    assert report.after.bits == 32 * (plain - 4 * 144) + 4 * 72 * 8
    assert report.parameter_change_pct == pytest.approx(-100 * 288 / plain)
    assert [change.name for change in report.layers] == ["stage1.a", "stage1.b", "stage2.a", "stage2.b"]
    assert report.layers[0].before.bits == 144 * 32 and report.layers[0].after.bits == 72 * 8
    assert model_size(net).megabytes == pytest.approx(report.after.bits / 8 / 2 ** 20)
    # compressed layers are no longer eligible, and their inner originals are not found again
    assert [layer.name for layer in eligible_layers(net, ("Conv2d", "Linear"))] == ["stem", "fc"]
