"""Trivial floors: the predictors against hand-computed values, the protocols' floors on hand-made data, the cache,
a smoke run recording them, and the leaderboard's floor rows and flags."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from harness_plugins.protocols.classification import ClassificationConfig
from harness_plugins.protocols.classification.protocol import ClassificationProtocol
from harness_plugins.protocols.contextualise import ContextualiseConfig
from harness_plugins.protocols.contextualise.protocol import scene_floors
from harness_plugins.protocols.reconstruction import ReconstructionConfig
from harness_plugins.protocols.reconstruction.protocol import FieldNetwork, ReconstructionProtocol, constant_occupancy
from harness_plugins.protocols.segmentation import SegmentationConfig
from harness_plugins.protocols.segmentation.protocol import SegmentationProtocol

from harness.config import compose_config, register_configs
from harness.data import DatasetInfo
from harness.floors import (FLOOR_SPLIT, FLOORS_FILE, at_level, best_constant_l1, best_level, best_per_metric, cached,
                            majority_label, majority_per_group, mean_absolute_error, mean_occupancy)
from harness.geometry.udf_extraction import extract_udf_mesh
from harness.leaderboard import NOT_LEARNED, ProtocolBoard, render_leaderboards
from harness.metrics.directions import direction
from harness.registry import default_registry
from harness.runner import RunContext, execute
from harness.store import Metric, Store

from .test_leaderboard import record, table_row

# ----- the trivial predictors ---------------------------------------------------------------------------------


def test_majority_label_ignores_unlabelled_and_breaks_ties_by_the_smallest_label():
    labels = np.array([2, 2, -1, 1, -1, 1, 3, -1])  # -1 would win; 1 and 2 tie
    assert majority_label(labels) == 1
    assert majority_label(labels[::-1]) == 1  # whatever the order read
    assert majority_label(np.array([4, 4, 0])) == 4
    with pytest.raises(ValueError, match="no labels"):
        majority_label(np.array([-1, -1]))


def test_majority_part_of_each_category():
    categories = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    parts = np.array([5, 5, 6, 7, 8, 8, -1, -1])
    assert majority_per_group(categories, parts) == {0: 5, 1: 8}


def test_mean_shape_of_two_known_occupancy_grids():
    # samples at the centres of a 4^3 lattice in [0, 1]^3 (bounding box [0.125, 0.875]^3, cut in two per axis);
    # shape A fills x < 0.5, shape B fills y < 0.5
    axis = (np.arange(4) + 0.5) / 4
    points = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    shape_a, shape_b = points[:, 0] < 0.5, points[:, 1] < 0.5
    mean = mean_occupancy(np.concatenate([points, points]), np.concatenate([shape_a, shape_b]), resolution=2)
    # cells (x, y): both shapes, one of them, or none
    assert mean.values[:, :, 0].tolist() == [[1.0, 0.5], [0.5, 0.0]]
    assert (mean.values[:, :, 0] == mean.values[:, :, 1]).all()
    centre = [0.125 + 0.375 * (i + 0.5) for i in (0, 1)]  # 0.3125, 0.6875
    assert mean(np.array([[centre[0], centre[0], 0.5], [centre[1], centre[1], 0.5]])) == pytest.approx([1.0, 0.0])
    # halfway between the centres of cells (0, 0) and (1, 0): trilinear; beyond the box: the nearest cell
    assert mean(np.array([[0.5, centre[0], 0.5], [-3.0, -3.0, 9.0]])) == pytest.approx([0.75, 1.0])


def test_mean_shape_level_set_read_at_half_and_the_best_level_for_known_shapes():
    field = lambda points: points[:, 0]  # noqa: E731  (a ramp along x)
    remapped = at_level(field, 0.2)
    assert remapped(np.array([[0.0], [0.1], [0.2], [0.6], [1.0]])) == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    # two shapes on the 10 points x = 0.07, 0.17, ..., 0.97: inside x >= 0.77 (3 points) and x >= 0.37 (7 points).
    # The ramp's inside at level t is x >= t: any t in (0.27, 0.37] takes the 7 points (IoU 3/7 and 1), any t in
    # (0.67, 0.77] the 3 (IoU 1 and 3/7): both mean 0.714, more than any other level (t in (0.47, 0.57]: 3/5 and
    # 5/7, mean 0.657); of the tied levels tried (0.30, 0.35, 0.70, 0.75) the lowest wins
    x = (np.arange(10) / 10 + 0.07)[:, None]
    shapes = [x[:, 0] >= 0.77, x[:, 0] >= 0.37]
    assert best_level(field, [x, x], shapes) == 0.30
    assert best_level(field, [x], [shapes[0]]) == 0.70  # one shape: its own extent
    with pytest.raises(ValueError, match="level"):
        at_level(field, 1.0)


def test_a_cell_without_samples_takes_the_mean_of_all():
    mean = mean_occupancy(np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.9, 0.9, 0.9]]), np.array([1, 0, 0]),
                          resolution=2)
    assert mean.values[0, 0, 0] == 1.0 and mean.values[1, 1, 1] == 0.0
    assert mean.values[0, 1, 0] == pytest.approx(1 / 3)


def test_median_is_the_best_constant_and_its_l1():
    training = np.array([0.0, 0.1, 0.2, 5.0])
    constant = best_constant_l1(training)
    assert constant == pytest.approx(0.15)
    assert all(mean_absolute_error(training, constant) <= mean_absolute_error(training, constant + step)
               for step in (-0.1, -0.01, 0.01, 0.1))
    assert mean_absolute_error(np.array([0.15, 0.35]), constant) == pytest.approx(0.1)


def test_best_of_several_trivial_predictors_per_metric():
    mean_shape = {("iou", None): 0.03, ("chamfer_l1", None): 0.14, ("iou", "lamp"): 0.2, ("parameters", None): 0.0}
    inside = {("iou", None): 0.05, ("chamfer_l1", None): 0.29, ("iou", "lamp"): 0.1}
    assert best_per_metric([mean_shape, inside], direction) == {
        ("iou", None): 0.05, ("chamfer_l1", None): 0.14, ("iou", "lamp"): 0.2}


# ----- the protocols' floors on hand-made data -----------------------------------------------------------------


@dataclass
class Sizes:
    items: int = 4


@dataclass
class HandMadeContext(RunContext):
    """A run context over hand-made splits (lists of items)."""

    dataset_config: Any = None

    def config(self, role: str) -> Any:
        return self.dataset_config


def hand_made(tmp_path: Path, info: DatasetInfo, splits: dict[str, list[dict]]) -> HandMadeContext:
    def item(index: int, arrays: dict) -> dict:
        return {"index": torch.tensor(index), **{key: torch.as_tensor(value) for key, value in arrays.items()}}

    items = {name: [item(i, arrays) for i, arrays in enumerate(split)] for name, split in splits.items()}
    dataset = SimpleNamespace(info=info, split=items.__getitem__)
    cfg = SimpleNamespace(paths=SimpleNamespace(cache=str(tmp_path / "cache")))
    encoder = SimpleNamespace(capabilities=SimpleNamespace(consumes="points"))  # what input_key reads
    return HandMadeContext(cfg=cfg, specs={"encoder": encoder}, dataset=dataset, registry=default_registry(),
                           device=torch.device("cpu"), run_dir=tmp_path / "run", seed=3, dataset_config=Sizes())


def figures(metrics: list[Metric]) -> dict[tuple[str, str | None], float]:
    assert {m.split for m in metrics} == {FLOOR_SPLIT}
    return {(m.name, m.class_name): m.value for m in metrics}


def test_classification_floor_is_the_majority_training_class(tmp_path):
    info = DatasetInfo(name="hand", modalities=("points",), targets=("label",), classes=("a", "b", "c"))
    points = np.zeros((2, 3), np.float32)
    ctx = hand_made(tmp_path, info, {"train": [{"label": c, "points": points} for c in (2, 2, 1, 1, 0)],
                                     "test": [{"label": c, "points": points} for c in (1, 1, 2, 0)]})
    floors = ClassificationProtocol(ClassificationConfig(batch_size=3)).floors(ctx)
    # b (1) wins the tie with c (2); predicted everywhere: half the test set, and class means 1, 0, 0
    assert figures(floors.metrics) == pytest.approx({("top1", None): 0.5, ("mean_class_top1", None): 1 / 3,
                                                     ("top1", "a"): 0.0, ("top1", "b"): 1.0, ("top1", "c"): 0.0})
    assert floors.score == 0.5
    assert not (tmp_path / "run").exists()  # the trivial models are scored without touching the run's folder


def test_segmentation_floor_is_the_majority_part_of_each_category(tmp_path):
    info = DatasetInfo(name="hand", modalities=("points",), targets=("part", "label"), classes=("mug", "lamp"),
                       parts=("handle", "body", "base", "shade"), parts_per_class={"mug": (0, 1), "lamp": (2, 3)})

    def shape(label: int, parts: list[int]) -> dict:
        return {"label": label, "part": np.array(parts), "query": np.zeros((len(parts), 3), np.float32),
                "points": np.zeros((2, 3), np.float32)}

    # mug: parts 0 twice, 1 three times -> body (1); lamp: 2 and 3 tie -> base (2)
    ctx = hand_made(tmp_path, info, {"train": [shape(0, [0, 1, 1, -1]), shape(0, [1, 0, -1]), shape(1, [2, 3, 3, 2])],
                                     "test": [shape(0, [1, 1, 0, -1]), shape(1, [3, 3, 2, -1])]})
    floors = SegmentationProtocol(SegmentationConfig()).floors(ctx)
    # mug test shape: handle IoU 0, body 2/3 -> 1/3; lamp: base 1/3, shade 0 -> 1/6
    assert figures(floors.metrics) == pytest.approx({("miou", None): 0.25, ("class_miou", None): 0.25,
                                                     ("miou", "mug"): 1 / 3, ("miou", "lamp"): 1 / 6})
    assert floors.score == pytest.approx(0.25)


def test_constant_occupancy_scored_by_the_reconstruction_protocol(tmp_path):
    info = DatasetInfo(name="hand", modalities=("points",), targets=("occupancy",), classes=("a",))
    test_shape = {"label": 0, "points": np.zeros((2, 3), np.float32), "iou_query": np.zeros((4, 3), np.float32),
                  "iou_occupancy": np.array([1.0, 0.0, 0.0, 1.0], np.float32)}
    ctx = hand_made(tmp_path, info, {"test": [test_shape]})
    protocol = ReconstructionProtocol(ReconstructionConfig())
    assert protocol.score(FieldNetwork(constant_occupancy(1.0)), ctx, "test") == pytest.approx(0.5)
    assert protocol.score(FieldNetwork(constant_occupancy(0.0)), ctx, "test") == 0.0


def scene_context(tmp_path: Path) -> HandMadeContext:
    info = DatasetInfo(name="rooms", modalities=("points",), targets=("udf", "semantic"), classes=(),
                       semantic_classes=("a", "b", "c"))
    surface = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.2, 0.0, 0.0], [0.3, 0.0, 0.0]], np.float32)
    train = [{"udf": np.array([0.01, 0.02, 0.5, 0.03], np.float32), "surface_semantic": np.array([0, 1, 1, -1])}]
    test = [{"udf": np.array([0.025, 0.2], np.float32), "surface": surface,
             "surface_semantic": np.array([1, 1, 0, -1])}]
    return hand_made(tmp_path, info, {"train": train, "test": test})


def test_scene_floors_majority_class_and_best_constant_udf(tmp_path):
    floors = figures(scene_floors(scene_context(tmp_path), ContextualiseConfig(max_eval_scenes=0), True))
    # the training distances clamped at 0.1 have median 0.025: test error (0 + 0.075) / 2; a positive constant
    # has no surface: F1 0. Class b everywhere: IoU of b 2/3, of a 0 (c absent); F1-δ of b: precision 2/3,
    # recall 1 -> 0.8, of a 0
    assert floors == pytest.approx({("udf_l1", None): 0.0375, ("f1_delta", None): 0.0, ("f1_2delta", None): 0.0,
                                    ("miou", None): 1 / 3, ("mf1_delta", None): 0.4, ("mf1_2delta", None): 0.4,
                                    ("miou", "a"): 0.0, ("miou", "b"): 2 / 3})
    geometry_only = figures(scene_floors(scene_context(tmp_path), ContextualiseConfig(max_eval_scenes=0), False))
    assert set(geometry_only) == {("udf_l1", None), ("f1_delta", None), ("f1_2delta", None)}


def test_a_constant_udf_extracts_no_surface():
    def constant(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.full(len(points), 0.01, np.float32), np.zeros((len(points), 3), np.float32)

    vertices, faces = extract_udf_mesh(constant, resolution=8)  # every cell is active (0.01 < two voxels)
    assert len(vertices) == 0 and len(faces) == 0


# ----- the cache -----------------------------------------------------------------------------------------------


def test_floors_are_computed_once_and_recomputed_when_damaged(tmp_path):
    calls = []

    def compute() -> dict:
        calls.append(1)
        return {"top1": 0.25}

    key = {"dataset": "fp", "setting": {"threshold": 0.5}}
    assert cached(tmp_path, key, compute, dict) == {"top1": 0.25}
    assert cached(tmp_path, key, compute, dict) == {"top1": 0.25} and len(calls) == 1
    [path] = tmp_path.glob(f"*/{FLOORS_FILE}")
    stored = json.loads(path.read_text())
    path.write_text(json.dumps({**stored, "payload": {"top1": 0.99}}))  # edited: fails its checksum
    assert cached(tmp_path, key, compute, dict) == {"top1": 0.25} and len(calls) == 2
    path.write_bytes(path.read_bytes()[:20])  # torn
    assert cached(tmp_path, key, compute, dict) == {"top1": 0.25} and len(calls) == 3
    assert json.loads(path.read_text()) == stored  # repaired
    cached(tmp_path, {**key, "setting": {"threshold": 0.4}}, compute, dict)
    assert len(calls) == 4 and len(list(tmp_path.glob(f"*/{FLOORS_FILE}"))) == 2

    def rejecting(payload: dict) -> dict:
        if len(calls) == 4:
            raise KeyError("score")
        return payload

    assert cached(tmp_path, key, compute, rejecting) == {"top1": 0.25} and len(calls) == 5


def test_scene_floors_are_cached_per_dataset_and_setting(tmp_path):
    ctx = scene_context(tmp_path)
    config = ContextualiseConfig(max_eval_scenes=0)
    first = scene_floors(ctx, config, True)
    [path] = (tmp_path / "cache" / "floors").glob(f"*/{FLOORS_FILE}")
    assert scene_floors(ctx, config, True) == first
    scene_floors(ctx, ContextualiseConfig(max_eval_scenes=0, delta=0.01), True)
    assert len(list((tmp_path / "cache" / "floors").glob(f"*/{FLOORS_FILE}"))) == 2
    path.write_text("{")
    assert scene_floors(ctx, config, True) == first


# ----- a run records them --------------------------------------------------------------------------------------


def test_a_smoke_run_records_floor_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    registry = default_registry()
    register_configs(registry)
    outcome = execute(compose_config(["protocol=classification", "decoder=classifier", "profile=smoke"]), registry)
    floors = figures([m for m in outcome.metrics if m.split == FLOOR_SPLIT])
    classes = registry.get("dataset", "synthetic_shapes").config().categories
    # the smoke shapes: two training shapes of every class (all tied: the first class wins), one test shape each
    assert floors == {("top1", None): 1 / len(classes), ("mean_class_top1", None): 1 / len(classes),
                      **{("top1", name): float(name == classes[0]) for name in classes}}
    assert all(m.higher_is_better for m in outcome.metrics if m.split == FLOOR_SPLIT)
    stored = Store(f"sqlite:///{tmp_path}/results.sqlite").metrics(protocol="classification")
    assert (stored["split"] == FLOOR_SPLIT).sum() == len(floors)


# ----- the leaderboard -----------------------------------------------------------------------------------------


BOARDS = {"reconstruction": ProtocolBoard(primary_metric="iou", floor_label="mean training shape")}
GOOD, POOR = "good+occupancy", "poor+occupancy"


def floored(store: Store, method: str, seed: int, iou: float, chamfer: float, floor_iou: float = 0.2,
            variant: str = "v") -> None:
    """A run with hand-written test metrics, per class (lamp) too, and its floors (iou 0.2, chamfer 0.1)."""
    run_id = store.start(record(method, seed, variant=variant))
    store.succeed(run_id, [Metric("test", "iou", iou, True), Metric("test", "chamfer", chamfer, False),
                           Metric("test", "iou", iou, True, class_name="lamp"),
                           Metric(FLOOR_SPLIT, "iou", floor_iou, True), Metric(FLOOR_SPLIT, "chamfer", 0.1, False),
                           Metric(FLOOR_SPLIT, "iou", 0.3, True, class_name="lamp")], wall_time_s=1.0)


def page(store: Store, out: Path, boards: dict = BOARDS) -> str:
    [path] = render_leaderboards(store, out, boards, {}, None)
    return path.read_text(encoding="utf-8")


def test_leaderboard_shows_the_floor_once_and_flags_rows_that_do_not_beat_it(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'f.sqlite'}")
    # learned: iou must reach 0.2 + 0.25 * 0.8 = 0.4 and chamfer 0.1 - 0.25 * 0.1 = 0.075
    floored(store, GOOD, 0, 0.45, 0.05)
    floored(store, GOOD, 1, 0.39, 0.07)  # this seed alone would not have learned iou; the mean 0.42 does
    floored(store, POOR, 0, 0.35, 0.08)  # beats the floor, but not by the margin
    text = page(store, tmp_path / "boards")
    assert table_row(text, "method") == ["method", "profile", "runs", "iou ↑", "chamfer ↓", NOT_LEARNED]
    assert table_row(text, GOOD) == [GOOD, "quick", "2", "0.4200 ± 0.04243", "0.06000 ± 0.01414", ""]
    assert table_row(text, POOR) == [POOR, "quick", "1", "0.3500", "0.08000", "iou, chamfer"]
    floor = "trivial floor: mean training shape"
    assert table_row(text, floor) == [floor, "quick", "", "0.2000", "0.1000", ""]
    assert text.count(floor) == 2  # once in the table, once in the per-class table: the same floor of three runs
    per_class = text[text.index("per class"):]
    assert table_row(per_class, floor) == [floor, "quick", "0.3000"]
    assert "25% of the distance from the floor to the ideal value" in text
    assert page(store, tmp_path / "again") == text


def test_distinct_floors_of_one_profile_get_a_row_each(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'd.sqlite'}")
    floored(store, GOOD, 0, 0.45, 0.05)
    floored(store, POOR, 0, 0.45, 0.05, floor_iou=0.3)  # e.g. another setting of the protocol: another floor
    text = page(store, tmp_path / "boards")
    assert table_row(text, f"trivial floor: mean training shape (for {GOOD})")[3] == "0.2000"
    assert table_row(text, f"trivial floor: mean training shape (for {POOR})")[3] == "0.3000"
    assert table_row(text, POOR)[-1] == "iou"  # 0.45 < 0.3 + 0.25 * 0.7 = 0.475, against its own runs' floor


def test_breakdown_rows_are_checked_against_the_overall_floor(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'q.sqlite'}")
    run_id = store.start(record(GOOD, 0))
    store.succeed(run_id, [Metric("test", "top1", 0.9, True, class_name="8"),
                           Metric("test", "top1", 0.15, True, class_name="2"),
                           Metric(FLOOR_SPLIT, "top1", 0.125, True)], wall_time_s=1.0)
    boards = {"reconstruction": ProtocolBoard(primary_metric="top1", breakdown="configuration",
                                              floor_label="majority training class")}
    text = page(store, tmp_path / "boards", boards)
    assert table_row(text, GOOD, "quick", "2") == [GOOD, "quick", "2", "0.1500", "top1"]
    assert table_row(text, GOOD, "quick", "8")[-1] == ""
    assert table_row(text, "trivial floor: majority training class") == [
        "trivial floor: majority training class", "quick", "", "0.1250", ""]


def test_pages_without_floors_have_no_floor_rows(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'n.sqlite'}")
    run_id = store.start(record(GOOD, 0))
    store.succeed(run_id, [Metric("test", "iou", 0.5, True)], wall_time_s=1.0)
    text = page(store, tmp_path / "boards")
    assert "trivial floor" not in text and NOT_LEARNED not in text
