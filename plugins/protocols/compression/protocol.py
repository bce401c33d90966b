"""The compression protocol: baseline -> compress -> fine-tune, each stage scored by the task's own protocol."""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from torch import nn

from harness.compression import CompressionReport
from harness.contracts import Compressor
from harness.datacache import sha256_file
from harness.floors import FLOOR_SPLIT
from harness.metrics.directions import metric
from harness.runner import RunContext, RunSetup
from harness.store import Metric
from harness.specs import Kind
from harness.task_protocol import TaskProtocol, task_protocol, task_protocol_name
from harness.trained import train_once
from harness.training import load_checkpoint
from harness.training_config import schedule_fields

from . import BaselineConfig, CompressionConfig


def checkpoint_file(config: BaselineConfig) -> Path:
    """``config.checkpoint`` as a path to an existing file."""
    path = Path(config.checkpoint).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"protocol.checkpoint={config.checkpoint!r}: no such file")
    return path


def baseline_fingerprint(setup: RunSetup) -> dict[str, str]:
    """What decides the baseline weights besides the run's own config, part of its identity
    (``ProtocolCaps.data_fingerprints``): the ``protocol.checkpoint`` file's content hash, or else the training
    schedule of the task's protocol (its spec's version and its config at this profile), which can change apart from
    this run's config. Either changed reruns the run instead of skipping it as already measured."""
    config = setup.config("protocol")
    if config.checkpoint:
        return {"checkpoint": sha256_file(checkpoint_file(config))}
    spec, schedule = setup.named_spec_and_config(Kind.PROTOCOL, task_protocol_name(setup))
    trainer = json.dumps([spec.name, spec.version, dataclasses.asdict(schedule)], sort_keys=True, default=str)
    return {"baseline training": hashlib.sha256(trainer.encode()).hexdigest()[:16]}


def baseline_model(ctx: RunContext, task: TaskProtocol, config: BaselineConfig) -> tuple[nn.Module, dict[str, Any]]:
    """The uncompressed model, loaded from ``config.checkpoint`` or trained by the task's protocol, and what
    decides its weights (the checkpoint's checksum, or the training recipe)."""
    if not config.checkpoint:
        return task.trained_model(ctx)[0], task.recipe(ctx)
    model = task.build_model(ctx)
    path = checkpoint_file(config)
    state = load_checkpoint(path, ctx.device, require_checksum=False)
    state = state.get("model", state) if isinstance(state, dict) else state
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, pickle.UnpicklingError) as exc:
        raise ValueError(f"protocol.checkpoint={config.checkpoint!r} does not fit the {task.name} model of "
                         f"encoder {ctx.specs['encoder'].name} and decoder {ctx.specs['decoder'].name}: "
                         f"{str(exc).splitlines()[0]}") from exc
    return model, {"checkpoint": sha256_file(path), "task": task.recipe(ctx)}


def save_report(report: CompressionReport, path: Path) -> None:
    """Every replaced layer with its setting and sizes, for inspection beside the run's metrics."""
    path.write_text(json.dumps(dataclasses.asdict(report), indent=1) + "\n")


class CompressionProtocol:
    def __init__(self, config: CompressionConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> list[Metric]:
        cfg = self.config
        task = task_protocol(ctx)
        task.check_data(ctx, "compression")
        model, origin = baseline_model(ctx, task, cfg)
        baseline = task.score(model, ctx, "test")
        metrics = [metric("test", f"baseline_{task.selection}", baseline)]
        finetuning = self.finetuning(task)
        if finetuning is not None:  # the control: the uncompressed model fine-tuned by the same schedule
            control = copy.deepcopy(model)
            train_once(ctx, control, {"control_of": origin, "schedule": dataclasses.asdict(finetuning.config)},
                       ctx.run_dir / "control", lambda directory: finetuning.train(control, ctx, directory))
            control_score = task.score(control, ctx, "test")
            metrics.append(metric("test", f"control_{task.selection}", control_score))
        compressor: Compressor = ctx.build("compressor")
        report = compressor.compress(model)
        model.to(ctx.device)
        save_report(report, ctx.run_dir / "compression.json")
        metrics.append(metric("test", f"pre_{task.selection}", task.score(model, ctx, "test")))
        if finetuning is not None:
            metrics.append(metric("val", task.selection, finetuning.train(model, ctx, ctx.run_dir / "finetune")))
        post = task.evaluate(model, ctx)
        score = next(m.value for m in post if m.name == task.selection and m.class_name is None)
        if finetuning is not None:
            metrics.append(metric("test", "delta_control", score - control_score))
        return metrics + post + self.floors(ctx, task, finetuning is not None) + [
            metric("test", "delta", score - baseline),
            metric("test", "parameters", report.after.parameters),
            metric("test", "parameters_change_pct", report.parameter_change_pct),
            metric("test", "size_mb", report.after.megabytes),
            metric("test", "baseline_size_mb", report.before.megabytes)]

    @staticmethod
    def floors(ctx: RunContext, task: TaskProtocol, control: bool) -> list[Metric]:
        """The task's trivial floors: of its test metrics after fine-tuning, and of its score at every stage."""
        floors = task.floors(ctx)
        stages = ["baseline_", "pre_"] + (["control_"] if control else [])
        return floors.metrics + [metric(FLOOR_SPLIT, f"{stage}{task.selection}", floors.score) for stage in stages]

    def finetuning(self, task: TaskProtocol) -> TaskProtocol | None:
        """The task's protocol with this protocol's schedule (None when there is no fine-tuning)."""
        cfg = self.config
        if cfg.steps <= 0 and cfg.epochs <= 0:
            return None
        return type(task)(dataclasses.replace(task.config, **schedule_fields(cfg)))
