"""Compression and quantisation protocols end to end (smoke sizes), the shared trained baseline, and their
leaderboards: per-configuration rows and a Pareto plot."""
from __future__ import annotations

import math
import os
import shutil

import pandas as pd
import pytest
import torch
from torch import nn

from harness.config import compose_config, register_configs
from harness.data import DatasetInfo
from harness.leaderboard import ProtocolBoard, render_leaderboards
from harness.pareto import ParetoPoints, pareto_points
from harness.registry import default_registry
from harness.runner import RunFailed, RunSetup, execute, method_label, resolve_specs, run_identity
from harness.specs import Kind, ParetoAxes, load_attribute
from harness.store import Metric, RunRecord, Store

IMAGES = ["dataset=synthetic_images", "encoder=resnet_cifar", "decoder=classifier", "decoder.hidden=0"]


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def run(home):
    registry = default_registry()
    register_configs(registry)

    def run(*overrides: str):
        return execute(compose_config(["profile=smoke", *IMAGES, *overrides]), registry)
    return run


def values(outcome) -> dict:
    return {(m.name, m.class_name): m.value for m in outcome.metrics if m.split == "test"}


def run_dir(home, protocol: str) -> str:
    runs = Store(f"sqlite:///{home}/results.sqlite").runs(status="succeeded")
    return runs[runs["protocol"] == protocol]["run_dir"].iloc[-1]


def smoke_resnet() -> nn.Module:
    spec = default_registry().get(Kind.ENCODER, "resnet_cifar")
    info = DatasetInfo(name="d", modalities=("image",), targets=("label",), classes=tuple("abcdefghij"),
                       input_shapes={"image": (3, 32, 32)})
    return spec.build(spec.config(**spec.profiles["smoke"]), info)


def test_compression_starts_from_the_task_protocols_own_model_and_an_exact_series_changes_nothing(run, home):
    classified = values(run("protocol=classification"))
    # a full-order series (3 harmonics on 3x3 kernels) fitted in closed form reproduces every kernel exactly
    exact = values(run("protocol=compression", "compressor=cosconv", "compressor.harmonics=3",
                       "compressor.fit=lstsq", "protocol.steps=0"))
    assert exact[("baseline_top1", None)] == classified[("top1", None)]
    assert exact[("pre_top1", None)] == exact[("baseline_top1", None)] == exact[("top1", None)]
    assert exact[("delta", None)] == 0.0
    assert ("control_top1", None) not in exact  # nothing fine-tuned, nothing to control for
    # one training, shared: both run folders hold the same cached weights file
    assert os.stat(f"{run_dir(home, 'classification')}/model.pt").st_ino == os.stat(
        f"{run_dir(home, 'compression')}/model.pt").st_ino


def test_compression_accounts_parameters_and_size_exactly(run):
    compressed = values(run("protocol=compression", "compressor=cosconv", "compressor.harmonics=2"))
    encoder = smoke_resnet()
    head = encoder.encoding.dim * 10 + 10  # the linear classifier (decoder.hidden=0) on the pooled features
    before = sum(p.numel() for p in encoder.parameters()) + head
    kernels = [m.weight.numel() for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    assert all(m.kernel_size == (3, 3) for m in encoder.modules() if isinstance(m, nn.Conv2d))
    after = before - sum(n * 5 // 9 for n in kernels)  # each 3x3 kernel keeps 2x2 coefficients
    assert compressed[("parameters", None)] == after
    assert compressed[("parameters_change_pct", None)] == pytest.approx(100 * (after - before) / before)
    assert compressed[("size_mb", None)] == pytest.approx(after * 4 / 2 ** 20)
    assert compressed[("baseline_size_mb", None)] == pytest.approx(before * 4 / 2 ** 20)
    assert compressed[("delta", None)] == pytest.approx(compressed[("top1", None)] - compressed[("baseline_top1", None)])
    # the control: the uncompressed model fine-tuned by the same schedule
    assert compressed[("delta_control", None)] == pytest.approx(
        compressed[("top1", None)] - compressed[("control_top1", None)])


def test_compression_from_a_checkpoint_and_a_clear_error_when_it_does_not_fit(run, home, tmp_path):
    classified = values(run("protocol=classification"))
    weights = tmp_path / "baseline.pt"  # a copy: the run folder's file is the shared trained cache's
    shutil.copyfile(f"{run_dir(home, 'classification')}/model.pt", weights)
    from_file = ("protocol=compression", "compressor=dsconv", "protocol.steps=0", f"protocol.checkpoint={weights}")
    loaded = run(*from_file)
    assert values(loaded)[("baseline_top1", None)] == classified[("top1", None)]
    # the file's content is part of the identity: the same file skips, changed weights rerun
    again = run(*from_file)
    assert (again.status, again.identity) == ("skipped", loaded.identity)
    state = torch.load(weights, weights_only=True)
    model = state.get("model", state)
    first = next(iter(model))
    model[first] = model[first] + 1
    torch.save(state, weights)
    changed = run(*from_file)
    assert changed.status == "succeeded" and changed.identity != loaded.identity
    with pytest.raises(RunFailed, match="does not fit the classification model of encoder resnet_cifar"):
        run("protocol=compression", "compressor=dsconv", "encoder.depth=14", f"protocol.checkpoint={weights}")
    with pytest.raises(FileNotFoundError, match="no such file"):  # before the run is recorded
        run("protocol=compression", "compressor=dsconv", f"protocol.checkpoint={tmp_path}/absent.pt")


def test_quantisation_rows_per_configuration_with_exact_bits(run, home):
    outcome = values(run("protocol=quantisation", "compressor=dsconv", "protocol.configurations=['8','2']"))
    encoder = smoke_resnet()
    convs = [m for m in encoder.modules() if isinstance(m, nn.Conv2d)]
    total = sum(p.numel() for p in encoder.parameters()) + encoder.encoding.dim * 10 + 10
    assert outcome[("bits", "32-bit Floating Point")] == 32 * total
    for bits in (8, 2):
        # DSConv keeps the first conv and the linear head in float; each other conv stores b bits per weight
        # and one 32-bit scale per block of 32 input channels, per (output channel, kernel position)
        quantised = convs[1:]
        blocks = sum(m.out_channels * 9 * math.ceil(m.in_channels / 32) for m in quantised)
        weights = sum(m.weight.numel() for m in quantised)
        expected = 32 * (total - weights) + bits * weights + 32 * blocks
        assert outcome[("bits", str(bits))] == expected
        assert outcome[("size_mb", str(bits))] == pytest.approx(expected / 8 / 2 ** 20)
        assert 0.0 <= outcome[("top1", str(bits))] <= 1.0
    with pytest.raises(RunFailed, match="protocol.setting='harmonics'"):
        run("protocol=quantisation", "compressor=dsconv", "protocol.setting=harmonics")


def test_quantisation_label_shows_the_swept_compressor_field_as_swept():
    """The configurations set the compressor's bits, so its default bits would mislabel the row."""
    registry = default_registry()
    specs = {"encoder": registry.get(Kind.ENCODER, "resnet_cifar"),
             "compressor": registry.get(Kind.COMPRESSOR, "dsconv")}
    configs = {role: spec.config() for role, spec in specs.items()}
    quantisation = registry.get(Kind.PROTOCOL, "quantisation")
    swept = method_label(specs, {**configs, "protocol": quantisation.config(configurations=["8", "2"])})
    assert swept == "resnet_cifar + dsconv (bits swept, block 32) [2 bits configurations]"
    compression = registry.get(Kind.PROTOCOL, "compression")
    assert method_label(specs, {**configs, "protocol": compression.config()}).startswith("resnet_cifar + dsconv (bits 4,")


def test_pareto_front_is_the_non_dominated_points():
    points = ParetoPoints("size_mb", "top1", (("a", 1.0, 0.5), ("b", 2.0, 0.4), ("c", 2.0, 0.7), ("d", 3.0, 0.7),
                                              ("e", 4.0, 0.9), ("f", 0.5, 0.1)))
    assert [label for label, _, _ in points.front()] == ["f", "a", "c", "e"]


def test_quantisation_leaderboard_has_a_row_per_configuration_and_a_deterministic_plot(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/r.sqlite")
    record = RunRecord(identity="i", variant="v", protocol="quantisation", dataset="toy", method="net + dsconv",
                       components={}, profile="quick", dataset_fingerprint="fp", config={}, seed=0,
                       environment={}, run_dir=None)
    rows = {"32-bit Floating Point": (0.9, 4.0), "8": (0.88, 1.0), "4 22": (0.7, 0.6), "2": (0.75, 0.5)}
    metrics = [Metric("test", name, value, higher, class_name=label) for label, (top1, size) in rows.items()
               for name, value, higher in (("top1", top1, True), ("size_mb", size, False))]
    store.succeed(store.start(record), metrics, wall_time_s=1.0)
    board = ProtocolBoard(primary_metric="top1", breakdown="configuration",
                          pareto=ParetoAxes("size_mb", ("iou", "top1")))
    out = tmp_path / "boards"
    render_leaderboards(store, out, {"quantisation": board}, {}, None)
    text = (out / "quantisation.md").read_text()
    assert "| method       | profile   | configuration         | top1 ↑   | size_mb ↓   |" in text
    assert "| net + dsconv | quick     | 4 22                  | 0.7000   | 0.6000      |" in text
    assert "![top1 vs size_mb](quantisation_toy_pareto.png)" in text
    png = (out / "quantisation_toy_pareto.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    render_leaderboards(store, out, {"quantisation": board}, {}, None)
    assert (out / "quantisation_toy_pareto.png").read_bytes() == png
    points = pareto_points(store.metrics(protocol="quantisation"), board.pareto)
    assert [label for label, _, _ in points.front()] == ["2", "8", "32-bit Floating Point"]


def test_pareto_points_include_each_methods_uncompressed_baseline():
    frame = pd.DataFrame([
        {"method": "net + cosconv (h 2)", "variant": "v", "class_name": None, "name": name, "value": value}
        for name, value in (("top1", 0.8), ("size_mb", 1.0), ("baseline_top1", 0.9), ("baseline_size_mb", 2.0),
                            ("control_top1", 0.95))])
    points = pareto_points(frame, ParetoAxes("size_mb", ("top1",)))
    assert set(points.points) == {("net + cosconv (h 2)", 1.0, 0.8), ("net uncompressed", 2.0, 0.9),
                                  ("net uncompressed, fine-tuned alike", 2.0, 0.95)}


@pytest.mark.parametrize("protocol", ["compression", "quantisation"])
def test_the_baselines_training_schedule_is_part_of_the_runs_identity(protocol, monkeypatch):
    """The baseline is trained by the task's protocol at the run's profile; a change there (a new profile, a new
    version) must rerun compression and quantisation runs rather than skip them as measured: their own config does
    not hold it."""
    registry = default_registry()
    register_configs(registry)
    cfg = compose_config([f"protocol={protocol}", "dataset=synthetic_images", "encoder=resnet_cifar",
                          "decoder=classifier", "compressor=dsconv", "profile=quick"])
    specs = resolve_specs(cfg, registry)

    def identity() -> str:
        setup = RunSetup(cfg=cfg, specs=specs, dataset=None, registry=registry)
        fingerprints = load_attribute(specs["protocol"].capabilities.data_fingerprints)(setup)
        return run_identity(cfg, specs, "fingerprint", data=fingerprints)

    before = identity()
    assert identity() == before
    monkeypatch.setitem(registry.get(Kind.PROTOCOL, "classification").profiles["quick"], "steps", 301)
    assert identity() != before
