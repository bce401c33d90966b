"""The compression protocol: baseline -> compress -> fine-tune, each stage scored by the task's own protocol."""
from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

from torch import nn

from harness.compression import CompressionReport
from harness.metrics.directions import metric
from harness.runner import RunContext
from harness.store import Metric
from harness.task_protocol import TaskProtocol, task_protocol
from harness.training import load_checkpoint

from . import BaselineConfig, CompressionConfig


def baseline_model(ctx: RunContext, task: TaskProtocol, config: BaselineConfig) -> nn.Module:
    """The uncompressed model: loaded from ``config.checkpoint``, or trained by the task's protocol."""
    if not config.checkpoint:
        return task.trained_model(ctx)[0]
    model = task.build_model(ctx)
    path = Path(config.checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"protocol.checkpoint={config.checkpoint!r}: no such file")
    state = load_checkpoint(path, ctx.device)
    state = state.get("model", state) if isinstance(state, dict) else state
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, pickle.UnpicklingError) as exc:
        raise ValueError(f"protocol.checkpoint={config.checkpoint!r} does not fit the {task.name} model of "
                         f"encoder {ctx.specs['encoder'].name} and decoder {ctx.specs['decoder'].name}: "
                         f"{str(exc).splitlines()[0]}") from exc
    return model


def save_report(report: CompressionReport, path: Path) -> None:
    """Every replaced layer with its setting and sizes, for inspection beside the run's metrics."""
    path.write_text(json.dumps(dataclasses.asdict(report), indent=1) + "\n")


class CompressionProtocol:
    def __init__(self, config: CompressionConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> list[Metric]:
        cfg = self.config
        task = task_protocol(ctx)
        model = baseline_model(ctx, task, cfg)
        baseline = task.score(model, ctx, "test")
        report = ctx.build("compressor").compress(model)
        model.to(ctx.device)
        save_report(report, ctx.run_dir / "compression.json")
        pre = task.score(model, ctx, "test")
        metrics = [metric("test", f"baseline_{task.selection}", baseline), metric("test", f"pre_{task.selection}", pre)]
        if cfg.steps > 0:
            schedule = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if hasattr(task.config, f.name)}
            finetuning = type(task)(dataclasses.replace(task.config, **schedule))
            metrics.append(metric("val", task.selection, finetuning.train(model, ctx, ctx.run_dir / "finetune")))
        post = task.evaluate(model, ctx)
        score = next(m.value for m in post if m.name == task.selection and m.class_name is None)
        return metrics + post + [
            metric("test", "delta", score - baseline),
            metric("test", "parameters", report.after.parameters),
            metric("test", "parameters_change_pct", report.parameter_change_pct),
            metric("test", "size_mb", report.after.megabytes),
            metric("test", "baseline_size_mb", report.before.megabytes)]
