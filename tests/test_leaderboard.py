"""Leaderboards: aggregation over seeds, current results only, published figures, byte-identical regeneration."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.leaderboard import PUBLISHED_HEADING, ProtocolBoard, render_leaderboards
from harness.reference import REFERENCE_COLUMNS, load_reference, reference_dir
from harness.store import Metric, RunRecord, Store

POINTNET, DGCNN = "pointnet+occupancy", "dgcnn+occupancy"
BOARDS = {"reconstruction": ProtocolBoard(reference_tables=("paper_t1",),
                                          reference_metrics={"IoU": "iou", "Chamfer-L1": "chamfer_l1"})}
DATASET_REFERENCES = {"synthetic_shapes": ("ShapeNet",)}
REFERENCE_CSV = """source,table,dataset,input,method,config,metric,direction,value,scale_note
paper2022,1,ShapeNet,point-cloud,ONet baseline,,IoU,up,0.78,
paper2022,1,ShapeNet,point-cloud,ONet baseline,,Chamfer-L1,down,0.0081,
paper2022,1,ModelNet40,point-cloud,ONet baseline,,IoU,up,0.73,
"""


def metrics(iou: float, chamfer: float) -> list[Metric]:
    return [Metric("test", "iou", iou, True), Metric("test", "chamfer", chamfer, False),
            Metric("test", "points", 1024.0),
            Metric("test", "iou", iou - 0.1, True, class_name="chair"),
            Metric("test", "iou", iou + 0.1, True, class_name="lamp"),
            Metric("val", "iou", 0.99, True)]


def record(method: str, seed: int, dataset: str = "synthetic_shapes", torch: str = "2.3.0",
           variant: str = "v") -> RunRecord:
    return RunRecord(identity=f"{method}/{dataset}/{seed}/{variant}", variant=variant, protocol="reconstruction", dataset=dataset,
                     method=method, components={}, profile="quick", dataset_fingerprint="fp", config={"seed": seed},
                     seed=seed, environment={"torch": torch, "device": "cpu", "hostname": "box"}, run_dir=None)


def finished(store: Store, run: RunRecord, iou: float, chamfer: float, force: bool = False) -> None:
    run_id = store.start(run, force=force)
    store.succeed(run_id, metrics(iou, chamfer), wall_time_s=1.0)


def build_store(path: Path, reverse: bool = False) -> Store:
    """Two seeds of pointnet (one forced rerun), one of dgcnn, a failed and a running run, a second dataset."""
    store = Store(f"sqlite:///{path}")
    steps = [
        lambda: finished(store, record(POINTNET, 0), 0.5, 0.012),
        lambda: finished(store, record(POINTNET, 1), 0.9, 0.5),
        lambda: finished(store, record(POINTNET, 1), 0.7, 0.010, force=True),  # replaces the one above
        lambda: finished(store, record(DGCNN, 0, torch="2.4.0"), 0.3, 0.02),
        lambda: finished(store, record(DGCNN, 0, dataset="blobs"), 0.1, 0.1),
        lambda: store.fail(store.start(record(POINTNET, 2)), "RuntimeError: diverged"),
        lambda: store.start(record(POINTNET, 3)),
    ]
    # reversed, the forced rerun must still come after the run it replaces
    order = [3, 4, 5, 6, 0, 1, 2] if reverse else range(len(steps))
    for index in order:
        steps[index]()
    return store


@pytest.fixture
def references(tmp_path: Path) -> Path:
    directory = tmp_path / "reference"
    directory.mkdir()
    (directory / "paper_t1.csv").write_text(REFERENCE_CSV, encoding="utf-8")
    return directory


def render(store: Store, out_dir: Path, references: Path | None) -> str:
    [path] = render_leaderboards(store, out_dir, BOARDS, DATASET_REFERENCES, references)
    assert path == out_dir / "reconstruction.md"
    return path.read_text(encoding="utf-8")


def table_row(text: str, *cells: str) -> list[str]:
    """The cells of the first markdown table row that starts with ``cells``."""
    for line in text.splitlines():
        row = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("|") and row[:len(cells)] == list(cells):
            return row
    raise AssertionError(f"no row starting {cells} in:\n{text}")


def test_mean_std_over_seeds_current_runs_only(tmp_path: Path, references: Path) -> None:
    page = render(build_store(tmp_path / "r.sqlite"), tmp_path / "boards", references)
    text = page[page.index("## synthetic_shapes"):]
    header = table_row(text, "method", "profile", "runs")
    assert header == ["method", "profile", "runs", "chamfer ↓", "iou ↑", "points"]
    # iou: mean(0.5, 0.7) = 0.6, sample std = sqrt(2 * 0.1**2 / 1) = 0.1414; chamfer: 0.011 ± 0.001414
    assert table_row(text, POINTNET) == [POINTNET, "quick", "2", "0.01100 ± 0.001414", "0.6000 ± 0.1414",
                                         "1024"]  # identical values: no ± 0
    assert table_row(text, DGCNN) == [DGCNN, "quick", "1", "0.02000", "0.3000", "1024"]
    # per class, chair: mean(0.4, 0.6), lamp: mean(0.6, 0.8)
    assert table_row(text, POINTNET, "quick", "0.5000 ± 0.1414")[3] == "0.7000 ± 0.1414"
    assert "0.9900" not in text  # the val split is not the primary one
    assert "diverged" not in page


def test_sections_sorted_with_environment_stamp(tmp_path: Path, references: Path) -> None:
    text = render(build_store(tmp_path / "r.sqlite"), tmp_path / "boards", references)
    assert "Do not edit by hand" in text and "`harness leaderboard`" in text
    assert text.index("## blobs") < text.index("## synthetic_shapes")
    shapes = text[text.index("## synthetic_shapes"):]
    assert table_row(shapes, "cpu") == ["cpu", "2.3.0", "2"]
    assert table_row(shapes, "cpu", "2.4.0") == ["cpu", "2.4.0", "1"]
    assert "box" not in text  # hostnames are not part of the stamp
    per_class = shapes[shapes.index("### iou ↑ per class"):]
    assert table_row(per_class, "method", "profile") == ["method", "profile", "chair", "lamp"]


def test_regeneration_is_byte_identical(tmp_path: Path, references: Path) -> None:
    store = build_store(tmp_path / "a.sqlite")
    first = render(store, tmp_path / "one", references)
    again = render(store, tmp_path / "one", references)
    shuffled = render(build_store(tmp_path / "b.sqlite", reverse=True), tmp_path / "two", references)
    assert first == again == shuffled
    written = [(tmp_path / name / "reconstruction.md").read_bytes() for name in ("one", "two")]
    assert written[0] == written[1]


def test_published_rows_are_marked_and_mapped(tmp_path: Path, references: Path) -> None:
    text = render(build_store(tmp_path / "r.sqlite"), tmp_path / "boards", references)
    blobs, shapes = text.split("## synthetic_shapes")
    assert PUBLISHED_HEADING not in blobs  # blobs stands beside no published dataset
    published = shapes[shapes.index(PUBLISHED_HEADING):]
    assert "not measured here" in PUBLISHED_HEADING and "original real datasets" in PUBLISHED_HEADING
    assert table_row(published, "paper2022", "1", "ShapeNet", "point-cloud", "ONet baseline", "", "iou ↑")[7:9] == [
        "IoU", "0.78"]
    assert table_row(published, "paper2022", "1", "ShapeNet", "point-cloud", "ONet baseline", "",
                     "chamfer_l1 ↓")[8] == "0.0081"  # printed digits kept
    assert "ModelNet40" not in published


def test_published_rows_are_limited_to_the_metrics_the_protocol_measures(tmp_path: Path, references: Path) -> None:
    boards = {"reconstruction": ProtocolBoard(reference_tables=("paper_t1",), reference_metrics={"IoU": "iou"})}
    store = build_store(tmp_path / "r.sqlite")
    render_leaderboards(store, tmp_path / "boards", boards, DATASET_REFERENCES, references)
    published = (tmp_path / "boards" / "reconstruction.md").read_text().split(PUBLISHED_HEADING)[1]
    assert "IoU" in published and "Chamfer-L1" not in published


def test_missing_reference_table_is_a_clear_error_and_writes_nothing(tmp_path: Path, references: Path) -> None:
    boards = {"reconstruction": ProtocolBoard(reference_tables=("paper_t1", "absent_t9"))}
    with pytest.raises(FileNotFoundError, match="absent_t9.csv"):
        render_leaderboards(build_store(tmp_path / "r.sqlite"), tmp_path / "boards", boards, DATASET_REFERENCES,
                            references)
    assert not (tmp_path / "boards" / "reconstruction.md").exists()


def test_malformed_reference_table_names_missing_columns(references: Path) -> None:
    (references / "broken.csv").write_text("source,table,dataset,value\nx,1,ShapeNet,0.5\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.csv.*input, method, config, metric, direction, scale_note"):
        load_reference(["broken"], [], references)


def test_load_reference_filters_datasets_and_keeps_printed_strings(references: Path) -> None:
    rows = load_reference(["paper_t1"], ["ShapeNet"], references)
    assert list(rows.columns) == list(REFERENCE_COLUMNS)
    assert list(rows["value"]) == ["0.78", "0.0081"] and list(rows["scale_note"]) == ["", ""]
    assert len(load_reference(["paper_t1"], [], references)) == 3


def test_reference_dir_prefers_environment(monkeypatch: pytest.MonkeyPatch, references: Path) -> None:
    monkeypatch.setenv("HARNESS_REFERENCE_DIR", str(references))
    assert reference_dir() == references


def test_protocol_without_runs_gets_a_page(tmp_path: Path) -> None:
    boards = {"segmentation": ProtocolBoard(), "reconstruction": ProtocolBoard()}
    paths = render_leaderboards(Store(f"sqlite:///{tmp_path}/empty.sqlite"), tmp_path / "boards", boards, {}, None)
    assert [path.name for path in paths] == ["reconstruction.md", "segmentation.md"]
    assert "No succeeded runs yet." in paths[1].read_text(encoding="utf-8")
    assert sorted(path.name for path in (tmp_path / "boards").iterdir()) == ["reconstruction.md", "segmentation.md"]


def test_shared_reference_tables_all_load() -> None:
    directory = reference_dir()
    if directory is None:
        pytest.skip("no shared/reference beside the repository")
    tables = sorted(path.stem for path in directory.glob("*.csv"))
    rows = load_reference(tables, [], directory)
    assert tables and len(rows) > 0 and list(rows.columns) == list(REFERENCE_COLUMNS)


def test_settings_of_one_method_are_kept_apart_by_variant(tmp_path: Path, references: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'v.sqlite'}")
    finished(store, record(POINTNET, 0, variant="aaaaaaaa-lr1e-3"), 0.5, 0.01)
    finished(store, record(POINTNET, 0, variant="bbbbbbbb-lr1e-4"), 0.7, 0.01)
    text = render(store, tmp_path / "boards", references)
    assert table_row(text, POINTNET, "quick", "aaaaaaaa", "1", "0.01000", "0.5000")
    assert table_row(text, POINTNET, "quick", "bbbbbbbb", "1", "0.01000", "0.7000")
    single = render(build_store(tmp_path / "s.sqlite"), tmp_path / "single", references)
    assert "variant" not in single  # one setting per method: no variant column


def test_the_dataset_difficulty_of_the_runs_is_named(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'results.sqlite'}")
    for seed, difficulty in ((0, "easy"), (1, "easy")):
        run = record(POINTNET, seed)
        run = RunRecord(**{**run.__dict__, "config": {"seed": seed, "dataset": {"difficulty": difficulty}}})
        store.succeed(store.start(run), metrics(0.5, 0.01), wall_time_s=1.0)
    store.succeed(store.start(record(DGCNN, 0, dataset="blobs")), metrics(0.1, 0.1), wall_time_s=1.0)
    text = render(store, tmp_path / "out", None)
    blobs, shapes = text.split("## blobs")[1].split("## synthetic_shapes")  # sections in dataset order
    assert "Dataset difficulty: `easy` (quick)" in shapes
    assert "Dataset difficulty" not in blobs  # a dataset without the setting
