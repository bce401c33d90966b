"""The cross-dataset protocol: stage 1 (geometric only) on the source dataset(s), the contextualiser + semantic
decoder on the run's dataset, evaluated on its test split. The stages are the ``contextualise`` protocol's
(:class:`~harness_plugins.protocols.contextualise.protocol.SceneStages`)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from harness.data import QUERY, UDF
from harness.metrics.directions import metric
from harness.runner import RunContext, RunSetup
from harness.specs import Kind
from harness.split_checks import check_splits
from harness.store import Metric

from ..contextualise.protocol import (SceneStages, TrainingData, check_dataset, data_key, evaluate_scenes,
                                      scene_floors, scene_split_keys, stage1_split_keys)
from . import CrossDatasetConfig


class GeometryItems(torch.utils.data.Dataset):
    """A split's items reduced to what stage 1 reads (the encoder input, queries and distances), cut to common
    sizes so the items of several datasets batch together (training items are random draws, so the first ``n``
    points and queries are a random subset too)."""

    def __init__(self, split: Any, input_key: str, input_points: int, query_points: int) -> None:
        self.split, self.input_key = split, input_key
        self.input_points, self.query_points = input_points, query_points

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> dict:
        item = self.split[index]
        return {self.input_key: item[self.input_key][:self.input_points], QUERY: item[QUERY][:self.query_points],
                UDF: item[UDF][:self.query_points]}


def source_datasets(ctx: RunSetup, config: CrossDatasetConfig) -> list[tuple[Any, Any]]:
    """(built dataset, its config) per source: the run's own dataset where a source names it without overrides,
    else the named dataset with this run's profile and ``source_config``'s overrides."""
    if not config.source:
        raise ValueError("protocol.source is empty: name the dataset(s) stage 1 trains on")
    stray = sorted(set(config.source_config) - set(config.source))
    if stray:
        raise ValueError(f"protocol.source_config configures {stray}, which protocol.source={list(config.source)} "
                         "does not name")
    sources = []
    for name in config.source:
        overrides = dict(config.source_config.get(name, {}))
        if name == ctx.specs["dataset"].name and not overrides:
            sources.append((ctx.dataset, ctx.config("dataset")))
            continue
        spec, dataset_config = ctx.named_spec_and_config(Kind.DATASET, name)
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(dataset_config)})
        if unknown:
            raise ValueError(f"protocol.source_config.{name} overrides unknown field(s) {unknown} of dataset {name}")
        dataset_config = dataclasses.replace(dataset_config, **overrides)
        dataset = spec.build(dataset_config, cache_dir=Path(ctx.cfg.paths.cache))
        info = dataset.info
        if "udf" not in info.targets or ctx.input_key not in info.modalities:
            raise ValueError(f"source dataset {name} provides {', '.join(info.modalities)} with "
                             f"{', '.join(info.targets)} targets; stage 1 needs {ctx.input_key} with udf targets")
        sources.append((dataset, dataset_config))
    return sources


def source_fingerprints(setup: RunSetup) -> dict[str, str]:
    """The sources' fingerprints, part of the run's identity (``ProtocolCaps.data_fingerprints``): a run whose
    source data changed is rerun, not skipped."""
    config = setup.config("protocol")
    return {f"source.{name}": dataset.info.fingerprint
            for name, (dataset, _) in zip(config.source, source_datasets(setup, config))}


def source_data(ctx: RunContext, config: CrossDatasetConfig) -> TrainingData:
    """Stage 1's training and validation data: the source's splits, or the union of the sources' (each checked
    first)."""
    sources = source_datasets(ctx, config)
    for dataset, _ in sources:
        check_splits(dataset, stage1_split_keys(ctx.input_key), "cross_dataset", role="source dataset")
    if len(sources) == 1:
        dataset, dataset_config = sources[0]
        return TrainingData(dataset.split("train"), dataset.split("val"),
                            [data_key(dataset_config, dataset.info.fingerprint)])
    sizes = {name: min(getattr(c, name) for _, c in sources) for name in ("input_points", "query_points")}
    splits = {split: torch.utils.data.ConcatDataset(
        [GeometryItems(dataset.split(split), ctx.input_key, sizes["input_points"], sizes["query_points"])
         for dataset, _ in sources]) for split in ("train", "val")}
    key = [{**data_key(c, dataset.info.fingerprint), **sizes} for dataset, c in sources]
    return TrainingData(splits["train"], splits["val"], key)


class CrossDatasetProtocol:
    def __init__(self, config: CrossDatasetConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> list[Metric]:
        check_dataset(ctx, True, "cross_dataset")
        check_splits(ctx.dataset, scene_split_keys(ctx.input_key, True, False), "cross_dataset")
        stages = SceneStages(ctx, self.config)
        stage1, udf_l1 = stages.geometric(source_data(ctx, self.config), ctx.run_dir / "stage1")
        parts, best = stages.on_frozen(stage1, True, ctx.run_dir / "stage2")
        metrics = [metric("val", "stage1_udf_l1", udf_l1), metric("val", "query_miou", best)]
        metrics += evaluate_scenes(ctx, self.config, parts.eval(), True)
        modules = [parts.encoder, parts.udf, parts.semantic, parts.context]
        metrics.append(metric("test", "parameters", sum(p.numel() for m in modules for p in m.parameters())))
        metrics.append(metric("test", "context_parameters", sum(p.numel() for p in parts.context.parameters())))
        return metrics + scene_floors(ctx, self.config, True)
