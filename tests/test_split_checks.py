"""Data problems caught before training (issue 11): every protocol stops, before any training step, on an empty
split it reads or an item lacking a key it reads, naming the dataset, the split (and the key). The check itself on
small in-memory datasets; the real protocols on real-format datasets written here with an empty split (one
training shape per class leaves nothing to carve validation from; ScanNet arrays with two scenes likewise)."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from harness.config import component_config, compose_config, register_configs
from harness.curves import CURVE_FILE
from harness.data import DatasetInfo
from harness.registry import default_registry
from harness.runner import RunContext, RunFailed, execute, resolve_specs
from harness.split_checks import SplitError, check_splits, merge_split_keys
from harness.store import Store
from tests.test_contextualise import write_scannet_arrays
from tests.test_real_datasets import cube_off, write_part_benchmark, write_resampled

# ----- the check on in-memory datasets ----------------------------------------------------------------------


class Listed:
    """A dataset of given items per split (a list each), or of splits given as they are."""

    def __init__(self, splits: dict[str, Any], name: str = "toy") -> None:
        self.info = DatasetInfo(name=name, modalities=("points",), targets=("label",), classes=("a",))
        self.splits = splits

    def split(self, name: str) -> Any:
        return self.splits[name]

    def mesh_path(self, split: str, index: int) -> None:
        return None


ITEM = {"points": 0, "label": 1, "index": 0}


class Unreadable:
    """A split of ``size`` items that fails when one is read."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        raise AssertionError("an item was read")


class Drawing:
    """A training split whose items draw from the global generators, as a training item draws its points."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict:
        return {"points": torch.rand(3), "noise": np.random.rand(), "pick": random.random()}


def test_a_complete_dataset_passes():
    dataset = Listed({split: [ITEM] for split in ("train", "val", "test")})
    check_splits(dataset, {"train": ("points", "label"), "val": ("points", "label"), "test": ("index",)}, "toy")


def test_an_empty_split_is_named_before_any_item_is_read():
    dataset = Listed({"train": Unreadable(3), "val": [], "test": Unreadable(1)}, name="scannet")
    with pytest.raises(SplitError, match=r"^dataset 'scannet' split 'val' is empty; protocol reconstruction "
                                         r"validates and selects its model on it$"):
        check_splits(dataset, {"train": ("points",), "val": ("points",), "test": ("points",)}, "reconstruction")
    with pytest.raises(SplitError, match=r"^source dataset 'scannet' split 'train' is empty; protocol cross_dataset "
                                         r"trains on it$"):
        check_splits(Listed({"train": [], "val": [ITEM]}, name="scannet"), {"train": (), "val": ()},
                     "cross_dataset", role="source dataset")
    assert issubclass(SplitError, ValueError)


def test_a_missing_key_is_named_with_the_keys_the_item_has():
    dataset = Listed({"train": [{"points": 0, "query": 0}], "val": [ITEM]}, name="X")
    with pytest.raises(SplitError, match=r"^dataset 'X' split 'train' item 0 lacks key 'occupancy' that protocol "
                                         r"reconstruction reads \(it has: points, query\)$"):
        check_splits(dataset, {"val": ("points",), "train": ("points", "query", "occupancy")}, "reconstruction")
    with pytest.raises(SplitError, match=r"lacks keys 'query', 'occupancy' that"):
        check_splits(dataset, {"val": ("points", "query", "occupancy")}, "reconstruction")


def test_reading_an_item_leaves_the_random_streams_as_they_were():
    dataset = Listed({"train": Drawing()})
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    check_splits(dataset, {"train": ("points",)}, "toy")
    after = (torch.rand(1).item(), np.random.rand(), random.random())
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    assert after == (torch.rand(1).item(), np.random.rand(), random.random())


def test_declarations_merge_in_first_seen_order():
    merged = merge_split_keys({"train": ("points", "label")}, {"train": ("points", "query"), "val": ("label",)}, {})
    assert merged == {"train": ("points", "label", "query"), "val": ("label",)}


# ----- the real protocols -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def registry():
    registry = default_registry()
    register_configs(registry)
    return registry


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    """Real-format datasets, each with one empty split, and their ``dataset.root``."""
    base = tmp_path_factory.mktemp("empty_splits")
    # modelnet40_resampled: one training shape per class (none to carve validation from) or none at all
    resampled = base / "resampled"
    write_resampled(resampled)
    (resampled / "modelnet40_train.txt").write_text("cone_0001\nnight_stand_0001\n")
    untrained = base / "untrained"
    write_resampled(untrained)
    (untrained / "modelnet40_train.txt").write_text("")
    # shapenetpart with an empty official validation list
    part = base / "shapenetpart"
    lists = write_part_benchmark(part, official=True) / "train_test_split"
    (lists / "shuffled_val_file_list.json").write_text(json.dumps([]))
    # ScanNet arrays of two scenes: one in the train list (validation carved from it: none), one in the val list
    scannet = base / "scannet"
    write_scannet_arrays(scannet, {"scene0001_00": 3.0, "scene0002_00": 4.0})
    three = base / "scannet3"
    write_scannet_arrays(three, {"scene0001_00": 3.0, "scene0002_00": 4.0, "scene0003_00": 3.5})
    return {"resampled": resampled, "untrained": untrained, "part": part, "modelnet": write_boxes(base / "mn", 1),
            "modelnet2": write_boxes(base / "mn2", 2), "scannet": scannet, "scannet3": three}


def write_boxes(root: Path, train_per_class: int) -> Path:
    """ModelNet40 OFF meshes: cubes and slabs, ``train_per_class`` training and one test mesh each."""
    for name, stretch in (("cube", 1.0), ("slab", 2.0)):
        for split, numbers in (("train", range(1, train_per_class + 1)), ("test", [9])):
            for number in numbers:
                path = root / name / split / f"{name}_{number:04d}.off"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(cube_off(stretch))
    return root


def failed_run(registry, overrides: list[str], home: Path) -> tuple[str, Path]:
    """Run ``overrides`` (smoke profile) in ``home``, which must fail: the stored error and the run's folder, which
    must hold nothing trained (no curve, no checkpoint)."""
    cfg = compose_config([*overrides, "profile=smoke"])
    with pytest.raises(RunFailed) as failure:
        execute(cfg, registry)
    run = Store(cfg.store.url).runs().iloc[-1]
    assert run["status"] == "failed" and run["error"] in str(failure.value)
    run_dir = Path(run["run_dir"])
    assert not (run_dir / CURVE_FILE).exists() and not list(run_dir.rglob("*.pt"))
    return run["error"], run_dir


EMPTY_VAL = "split 'val' is empty; protocol {} validates and selects its model on it"
CLASSIFIER = ["dataset=modelnet40_resampled", "dataset.input_points=32", "encoder=pointnet", "decoder=classifier"]
MESHES = ["dataset=modelnet40", "encoder=pointnet", "dataset.workers=1"]


@pytest.mark.parametrize("protocol, overrides", [
    ("classification", ["protocol=classification", *CLASSIFIER]),
    ("compression", ["protocol=compression", *CLASSIFIER, "compressor=bfp"]),
    ("quantisation", ["protocol=quantisation", *CLASSIFIER, "compressor=bfp"]),
])
def test_classifier_protocols_stop_on_an_empty_validation_split(registry, roots, tmp_path, monkeypatch, protocol,
                                                                 overrides):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    error, _ = failed_run(registry, [*overrides, f"dataset.root={roots['resampled']}"], tmp_path)
    assert error == f"SplitError: dataset 'modelnet40_resampled' {EMPTY_VAL.format(protocol)}"


def test_classification_stops_on_an_empty_training_split(registry, roots, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    error, _ = failed_run(registry, ["protocol=classification", *CLASSIFIER, f"dataset.root={roots['untrained']}"],
                          tmp_path)
    assert error == ("SplitError: dataset 'modelnet40_resampled' split 'train' is empty; protocol classification "
                     "trains on it")  # was torch's "num_samples=0"


@pytest.mark.parametrize("protocol, overrides", [
    ("reconstruction", ["protocol=reconstruction", "decoder=occupancy"]),
    ("multitask", ["protocol=multitask", "protocol.tasks=[occupancy,classification]"]),
    ("holdout", ["protocol=holdout", "protocol.pretrain_tasks=[occupancy]", "protocol.task=classification"]),
])
def test_shape_protocols_stop_on_an_empty_validation_split(registry, roots, tmp_path, monkeypatch, protocol,
                                                           overrides):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    error, _ = failed_run(registry, [*overrides, *MESHES, f"dataset.root={roots['modelnet']}"], tmp_path)
    assert error == f"SplitError: dataset 'modelnet40' {EMPTY_VAL.format(protocol)}"  # was "best.pt cannot be loaded"


def test_segmentation_stops_on_an_empty_validation_split(registry, roots, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    error, _ = failed_run(registry, ["protocol=segmentation", "decoder=segmentation", "dataset=shapenetpart",
                                     f"dataset.root={roots['part']}", "dataset.input_points=100",
                                     "dataset.categories=[Mug,Chair]"], tmp_path)
    assert error == f"SplitError: dataset 'shapenetpart' {EMPTY_VAL.format('segmentation')}"


SCENES = ["encoder=point_transformer", "dataset=scannet", "dataset.val_fraction=0.5", "dataset.workers=1"]


def test_contextualise_stops_on_an_empty_validation_split(registry, roots, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    error, _ = failed_run(registry, ["protocol=contextualise", "protocol.row=geometric", *SCENES,
                                     f"dataset.root={roots['scannet']}"], tmp_path)
    assert error == f"SplitError: dataset 'scannet' {EMPTY_VAL.format('contextualise')}"  # was a success, val 0


def test_cross_dataset_stops_on_a_source_with_an_empty_validation_split(registry, roots, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    source = f"+protocol.source_config={{scannet: {{root: '{roots['scannet']}', val_fraction: 0.5, workers: 1}}}}"
    error, _ = failed_run(registry, ["protocol=cross_dataset", *SCENES, f"dataset.root={roots['scannet3']}",
                                     "protocol.source=[scannet]", source], tmp_path)
    assert error == f"SplitError: source dataset 'scannet' {EMPTY_VAL.format('cross_dataset')}"


class WithoutKey:
    """A built dataset whose items lack ``key`` (a loader that forgot a target)."""

    def __init__(self, dataset: Any, key: str) -> None:
        self.dataset, self.key, self.info = dataset, key, dataset.info

    def split(self, name: str) -> list[dict]:
        data = self.dataset.split(name)
        return [{k: v for k, v in data[i].items() if k != self.key} for i in range(len(data))]

    def mesh_path(self, split: str, index: int) -> Any:
        return self.dataset.mesh_path(split, index)


def test_reconstruction_stops_on_an_item_without_occupancy(registry, roots, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path))
    cfg = compose_config(["protocol=reconstruction", *MESHES, f"dataset.root={roots['modelnet2']}", "profile=smoke"])
    specs = resolve_specs(cfg, registry)
    dataset = specs["dataset"].build(component_config(cfg, specs["dataset"]), cache_dir=Path(cfg.paths.cache))
    assert len(dataset.split("val")) == 2  # only the key is missing
    ctx = RunContext(cfg=cfg, specs=specs, dataset=WithoutKey(dataset, "occupancy"), registry=registry,
                     device=torch.device("cpu"), run_dir=tmp_path / "run", seed=0)
    protocol = specs["protocol"].build(component_config(cfg, specs["protocol"]))
    with pytest.raises(SplitError, match=r"^dataset 'modelnet40' split 'train' item 0 lacks key 'occupancy' that "
                                         r"protocol reconstruction reads \(it has: points, query, label, index\)$"):
        protocol.run(ctx)
    assert not (tmp_path / "run").exists()
