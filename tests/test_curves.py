"""Training curves and phase times: what fit() records, resumes, caches, stores and plots, and the bench's
timing table."""
from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.bench import Combination, bench_timing, report_timing
from harness.config import compose_config, register_configs
from harness.curve_plots import curve_panels
from harness.curves import CURVE_FILE, CurvePoint, collect_curves, read_curve
from harness.leaderboard import ProtocolBoard, render_leaderboards
from harness.registry import default_registry
from harness.runner import RunOutcome, execute
from harness.store import Metric, RunRecord, Store
from harness.training import fit
from harness.training_config import TrainingConfig

CPU = torch.device("cpu")


def test_points_at_validations_and_every_fiftieth_of_training_with_mean_losses(tmp_path: Path) -> None:
    """100 steps: a loss point every 2 steps, a validation every 5. Step i's loss is i, so a point's loss is the
    mean of the step numbers since the previous point; the warm-up's rates are lr * (i + 1) / 4."""
    model = torch.nn.Linear(1, 1)
    step_losses, validations = itertools.count(), itertools.count(1)
    config = TrainingConfig(steps=100, batch_size=1, lr=0.1, warmup_steps=4, validate_every=5, checkpoint_every=100)
    fit(model, [{"x": torch.ones(1)}], config, tmp_path, CPU, seed=0,
        loss_fn=lambda m, batch: m(batch["x"]).sum() * 0 + next(step_losses),
        validate=lambda m: next(validations) / 10, metric_name="score")
    points = read_curve(tmp_path / CURVE_FILE)
    assert [(p.step, p.loss, p.lr, p.metric, p.value) for p in points[:6]] == [
        (2, 0.5, 0.05, None, None),  # steps 0, 1 at lr 0.025, 0.05
        (4, 2.5, 0.1, None, None),  # steps 2, 3
        (5, 4.0, 0.1, "score", 0.1),  # step 4, the first validation
        (6, 5.0, 0.1, None, None),
        (8, 6.5, 0.1, None, None),
        (10, 8.5, 0.1, "score", 0.2)]
    assert [p.step for p in points] == [step for step in range(1, 101) if step % 2 == 0 or step % 5 == 0]
    assert (points[-1].step, points[-1].loss, points[-1].value) == (100, 98.5, 2.0)  # steps 98, 99; 20th validation
    seconds = [p.seconds for p in points]
    assert seconds == sorted(seconds) and seconds[0] >= 0


class Interrupt(Exception):
    pass


def fit_line(run_dir: Path, interrupt_at: int | None = None) -> float:
    """Fit w·x to 1 on one item (a deterministic trajectory), raising on the ``interrupt_at``-th step."""
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    data = [{"x": torch.tensor([1.0, 2.0])}]
    steps = itertools.count(1)

    def squared_error(m: torch.nn.Module, batch: dict) -> torch.Tensor:
        return ((m(batch["x"]) - 1) ** 2).mean()

    def loss_fn(m: torch.nn.Module, batch: dict) -> torch.Tensor:
        if next(steps) == interrupt_at:
            raise Interrupt()
        return squared_error(m, batch)

    config = TrainingConfig(steps=100, batch_size=1, lr=0.01, validate_every=10, checkpoint_every=5)
    return fit(model, data, config, run_dir, CPU, seed=0, loss_fn=loss_fn,
               validate=lambda m: -squared_error(m, data[0]).item(), metric_name="negative_loss")


def test_resumed_training_truncates_its_curve_to_the_checkpoint_and_ends_as_an_uninterrupted_one(tmp_path) -> None:
    fit_line(tmp_path / "whole")
    with pytest.raises(Interrupt):
        fit_line(tmp_path / "resumed", interrupt_at=38)  # step 37: checkpointed at 35, loss points up to 36
    assert [p.step for p in read_curve(tmp_path / "resumed" / CURVE_FILE)][-3:] == [32, 34, 36]
    fit_line(tmp_path / "resumed")

    whole, resumed = (read_curve(tmp_path / name / CURVE_FILE) for name in ("whole", "resumed"))
    assert [p.step for p in resumed] == [p.step for p in whole] == list(range(2, 101, 2))
    # the same weights, optimiser state and loss sums come back from the checkpoint, so the numbers are equal; the
    # point at 36 averages step 34 (before the interruption, kept in the checkpoint) and step 35
    assert ([(p.loss, p.lr, p.metric, p.value) for p in resumed]
            == [(p.loss, p.lr, p.metric, p.value) for p in whole])
    assert len({p.loss for p in whole}) == len(whole)  # every point's loss differs: it is not a constant
    seconds = [p.seconds for p in resumed]
    assert seconds == sorted(seconds)  # the clock goes on from the checkpoint's


def test_curves_are_collected_per_stage_folder(tmp_path: Path) -> None:
    for folder, step in (("", 1), ("stage1", 2), ("stage2", 3), ("control/inner", 4)):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / CURVE_FILE).write_text(json.dumps(
            {"step": step, "seconds": 0.5, "loss": 1.0, "lr": 0.1, "metric": None, "value": None}) + "\n")
    curves = collect_curves(tmp_path)
    assert {stage: [p.step for p in points] for stage, points in curves.items()} == {
        "": [1], "stage1": [2], "stage2": [3], "control/inner": [4]}


def record(method: str, seed: int, protocol: str = "classification") -> RunRecord:
    return RunRecord(identity=f"{method}/{seed}", variant=method, protocol=protocol, dataset="shapes",
                     method=method, components={}, profile="quick", dataset_fingerprint="fp", config={"seed": seed},
                     seed=seed, environment={"torch": "2.3", "device": "cpu"}, run_dir=None)


def curve(*values: float) -> list[CurvePoint]:
    """A loss point at step 5 and top1 validations at steps 10, 20, ... with ``values``."""
    return [CurvePoint(5, 1.0, 2.0, 0.1)] + [CurvePoint(10 * (i + 1), 2.0 * (i + 1), 1.0 / (i + 1), 0.1, "top1", value)
                                             for i, value in enumerate(values)]


def test_store_round_trip_with_run_description(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/results.sqlite")
    run_id = store.start(record("pointnet", 3))
    store.succeed(run_id, [Metric("test", "top1", 0.5, True)], wall_time_s=1.0,
                  curves={"stage2": curve(0.25), "": curve(float("nan"), 0.75)})
    store.succeed(store.start(record("other", 0, protocol="reconstruction")), [], 1.0, curves={"": curve(0.1)})
    frame = store.curves(protocol="classification")
    assert list(frame[["method", "seed", "stage", "step"]].itertuples(index=False, name=None)) == [
        ("pointnet", 3, "", 5), ("pointnet", 3, "", 10), ("pointnet", 3, "", 20),
        ("pointnet", 3, "stage2", 5), ("pointnet", 3, "stage2", 10)]
    first = frame.iloc[1]
    assert (first["seconds"], first["loss"], first["lr"], first["metric"]) == (2.0, 1.0, 0.1, "top1")
    assert pd.isna(first["value"]) and pd.isna(frame.iloc[0]["value"]) and pd.isna(frame.iloc[0]["metric"])
    assert frame.iloc[2]["value"] == 0.75 and set(frame["dataset"]) == {"shapes"}
    assert len(store.curves()) == 7


def test_a_store_made_before_curves_gains_the_table_and_keeps_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    store = Store(f"sqlite:///{path}")
    store.succeed(store.start(record("pointnet", 0)), [Metric("test", "top1", 0.5, True)], 1.0)
    store.close()
    with sqlite3.connect(path) as connection:  # as the store was before this table existed
        connection.execute("DROP TABLE curves")
    reopened = Store(f"sqlite:///{path}")
    assert reopened.curves().empty and list(reopened.metrics()["value"]) == [0.5]
    reopened.succeed(reopened.start(record("pointnet", 1)), [], 1.0, curves={"": curve(0.5)})
    assert list(reopened.curves()["seed"]) == [1, 1]


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    registry = default_registry()
    register_configs(registry)
    return lambda *overrides: execute(compose_config(["protocol=classification", "decoder=classifier",
                                                      "profile=smoke", *overrides]), registry)


def test_runs_store_curves_and_phase_times_and_a_cached_training_brings_its_curve(run, tmp_path) -> None:
    first = run("seed=2001")
    again = run("seed=2001", "force=true")  # reruns the run, reusing its cached training
    store = Store(f"sqlite:///{tmp_path}/results.sqlite")
    curves = store.curves(status=None)  # the first run is superseded by the second
    smoke_points = [2, 4]  # 4 steps validated every 2; a loss point every step
    for outcome in (first, again):
        points = curves[curves["run_id"] == outcome.run_id]
        assert list(points["stage"].unique()) == [""]
        assert list(points["step"]) == [1, 2, 3, 4]
        assert list(points.loc[points["metric"].notna(), "step"]) == smoke_points
    columns = ["step", "seconds", "loss", "lr", "metric", "value"]
    assert (curves.loc[curves["run_id"] == first.run_id, columns].reset_index(drop=True)
            .equals(curves.loc[curves["run_id"] == again.run_id, columns].reset_index(drop=True)))

    metrics = store.metrics(status=None)
    times = {run_id: dict(zip(group["name"], group["value"]))
             for run_id, group in metrics[metrics["split"] == "time"].groupby("run_id")}
    assert metrics.loc[metrics["split"] == "time", "higher_is_better"].isna().all()
    for outcome in (first, again):
        seconds = times[outcome.run_id]
        assert set(seconds) == {"dataset_s", "data_s", "train_s", "validate_s", "checkpoint_s", "evaluate_s",
                                "total_s"}
        assert min(seconds.values()) >= 0
        assert sum(value for name, value in seconds.items() if name != "total_s") <= seconds["total_s"]
        assert all(m.split != "time" for m in outcome.metrics)  # the outcome keeps the protocol's own
    assert times[first.run_id]["train_s"] > 0 and times[first.run_id]["validate_s"] > 0
    assert times[again.run_id]["train_s"] == times[again.run_id]["validate_s"] == 0  # nothing was trained


def curve_store(path: Path, reverse: bool = False) -> Store:
    """Two seeds of pointnet and one of dgcnn, each with curves and time metrics."""
    store = Store(f"sqlite:///{path}")
    runs = [("pointnet", 0, curve(0.2, 0.4)), ("pointnet", 1, curve(0.4, 0.8)), ("dgcnn", 0, curve(0.1, 0.3))]
    for method, seed, points in reversed(runs) if reverse else runs:
        store.succeed(store.start(record(method, seed)),
                      [Metric("test", "top1", points[-1].value, True), Metric("time", "total_s", 12.5)], 1.0,
                      curves={"": points})
    return store


def test_curve_panels_average_the_seeds_of_a_row() -> None:
    frame = pd.DataFrame([{"line": "a", "stage": "", "step": p.step, "loss": p.loss, "metric": p.metric,
                           "value": p.value} for points in (curve(0.2, 0.4), curve(0.4, 0.8)) for p in points]
                         + [{"line": "b", "stage": "stage2", "step": 10, "loss": 3.0, "metric": "iou", "value": 0.5}])
    panels = curve_panels(frame)
    assert [(title, is_loss) for title, _, is_loss in panels] == [
        ("validation top1", False), ("training loss", True), ("stage2: validation iou", False),
        ("stage2: training loss", True)]
    assert panels[0][1] == {"a": ([10, 20], pytest.approx([0.3, 0.6]))}
    assert panels[1][1] == {"a": ([5, 10, 20], pytest.approx([2.0, 1.0, 0.5]))}
    assert panels[2][1] == {"b": ([10], [0.5])}


def test_leaderboard_links_a_curve_png_per_dataset_regenerated_byte_identically(tmp_path: Path) -> None:
    boards = {"classification": ProtocolBoard()}
    [page] = render_leaderboards(curve_store(tmp_path / "a.sqlite"), tmp_path / "one", boards, {}, None)
    render_leaderboards(curve_store(tmp_path / "b.sqlite", reverse=True), tmp_path / "two", boards, {}, None)
    text = page.read_text(encoding="utf-8")
    assert "### Training curves" in text and "](classification_shapes_curves.png)" in text
    assert "total_s" not in text and "12.5" not in text  # the phase times are not leaderboard figures
    png = (tmp_path / "one" / "classification_shapes_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG") and png == (tmp_path / "two" / "classification_shapes_curves.png").read_bytes()
    assert page.read_bytes() == (tmp_path / "two" / "classification.md").read_bytes()


def test_bench_timing_lists_every_run_slowest_first_with_recorded_times(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path}/results.sqlite")
    for identity, method, total in (("fast", "pointnet", 3.0), ("slow", "dgcnn", 9.0)):
        run_id = store.start(RunRecord(identity=identity, variant=identity, protocol="classification",
                                       dataset="shapes", method=method, components={}, profile="quick",
                                       dataset_fingerprint="fp", config={}, seed=1, environment={}, run_dir=None))
        store.succeed(run_id, [Metric("time", "total_s", total), Metric("time", "train_s", total / 3)], total)
    combination = Combination("classification", "shapes", "pointnet", "classifier")
    results = [(combination, RunOutcome("succeeded", "fast"), ""), (combination, None, "RuntimeError: boom"),
               (combination, RunOutcome("skipped", "slow"), "")]
    rows = report_timing(results, store.url, tmp_path / "home" / "bench_timing.json")
    assert [(row["method"], row["seed"], row["status"], row["total_s"], row["train_s"], row["data_s"])
            for row in rows] == [("dgcnn", 1, "skipped", 9.0, 3.0, None), ("pointnet", 1, "succeeded", 3.0, 1.0, None),
                                 ("encoder=pointnet decoder=classifier", None, "failed", None, None, None)]
    assert json.loads((tmp_path / "home" / "bench_timing.json").read_text()) == rows
    assert bench_timing(results, store) == rows
