"""The hold-out protocol: multi-task stage 1, then a fresh head on the frozen encoder."""
from __future__ import annotations

import torch
from torch import nn

from harness.metrics.directions import metric
from harness.runner import RunContext
from harness.specs import Kind
from harness.store import Metric

from ..multitask.protocol import (SCORERS, MultitaskModel, build_model, check_data, check_tasks, evaluate, floors,
                                  train, train_once_for)
from . import HoldoutConfig


class Frozen(nn.Module):
    """An encoder that neither learns nor updates its batch-norm statistics, whatever mode its parent is in."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.encoding = encoder.encoding

    def train(self, mode: bool = True) -> "Frozen":
        return self  # stays in eval mode

    @torch.no_grad()
    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.encoder(inputs)


class HoldoutProtocol:
    def __init__(self, config: HoldoutConfig) -> None:
        self.config = config

    def run(self, ctx: RunContext) -> list[Metric]:
        cfg, info = self.config, ctx.dataset.info
        if cfg.task in cfg.pretrain_tasks:
            raise ValueError(f"protocol.task={cfg.task!r} is also in protocol.pretrain_tasks={cfg.pretrain_tasks}; "
                             "a held-out task must not train the encoder")
        check_tasks([cfg.task], "parallel", info.targets, info.name)
        pretrained = build_model(ctx, cfg.pretrain_tasks, cfg.decoders, cfg.heads)
        check_data(ctx, cfg, [*cfg.pretrain_tasks, cfg.task], "holdout")
        stage1 = train_once_for(pretrained, ctx, cfg, cfg.pretrain_tasks, cfg.decoders, ctx.run_dir / "stage1")
        # stage 1's test metrics are those of the multitask (or, for ONet alone, reconstruction) run that trained
        # the same weights: not evaluated again here
        metrics = [metric("val", f"stage1_{SCORERS[cfg.pretrain_tasks[0]].selection}", stage1)]

        encoder = Frozen(pretrained.encoder)
        head = ctx.build_named(Kind.DECODER, cfg.heads[cfg.task], encoder.encoding, info).to(ctx.device)
        held_out = MultitaskModel(encoder, {cfg.task: head}, pretrained.input_key)
        stage2 = train(held_out, ctx, cfg, [cfg.task], ctx.run_dir / "stage2", parameters=head.parameters())
        metrics.append(metric("val", SCORERS[cfg.task].selection, stage2))
        return metrics + evaluate(held_out, ctx, cfg, [cfg.task]) + floors(ctx, cfg, [cfg.task])
