"""The quantisation protocol: one baseline, a copy of it per bit configuration, each scored and sized."""
from __future__ import annotations

import copy
import dataclasses

from harness.compression import model_size
from harness.floors import FLOOR_SPLIT
from harness.metrics.directions import metric
from harness.runner import RunContext
from harness.store import Metric
from harness.task_protocol import task_protocol

from ..compression.protocol import baseline_model, save_report
from . import FLOAT_LABEL, QuantisationConfig


class QuantisationProtocol:
    def __init__(self, config: QuantisationConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> list[Metric]:
        cfg = self.config
        compressor_config = ctx.config("compressor")
        if not hasattr(compressor_config, cfg.setting):
            raise ValueError(f"protocol.setting={cfg.setting!r}: compressor {ctx.specs['compressor'].name} has no "
                             f"such field; its fields are {[f.name for f in dataclasses.fields(compressor_config)]}")
        if not cfg.configurations:
            raise ValueError("protocol.configurations is empty: give at least one setting to evaluate")
        task = task_protocol(ctx)
        task.check_data(ctx, "quantisation")
        model, _ = baseline_model(ctx, task, cfg)
        metrics = self.row(FLOAT_LABEL, task.score(model, ctx, "test"), model_size(model), task.selection)
        for n, configuration in enumerate(cfg.configurations):
            quantised = copy.deepcopy(model)
            compressor = ctx.specs["compressor"].build(dataclasses.replace(compressor_config,
                                                                           **{cfg.setting: str(configuration)}))
            report = compressor.compress(quantised)
            quantised.to(ctx.device)
            save_report(report, ctx.run_dir / f"configuration_{n}.json")
            metrics += self.row(str(configuration), task.score(quantised, ctx, "test"), report.after, task.selection)
        # the task's trivial floor of the score every configuration records (one figure, not per configuration)
        return metrics + [metric(FLOOR_SPLIT, task.selection, task.floors(ctx).score)]

    @staticmethod
    def row(label: str, score: float, size, selection: str) -> list[Metric]:
        return [metric("test", selection, score, class_name=label),
                metric("test", "bits", size.bits, class_name=label),
                metric("test", "size_mb", size.megabytes, class_name=label),
                metric("test", "parameters", size.parameters, class_name=label)]
