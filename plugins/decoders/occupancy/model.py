"""Torch implementation of the Occupancy Networks conditional-batch-norm decoder (DecoderCBatchNorm)."""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo, check_encoding

from . import SPEC, OccupancyConfig


class CBatchNorm1d(nn.Module):
    """Batch norm whose scale and shift are predicted from the code; starts as plain (gamma 1, beta 0) batch norm.

    Features are kept points-last ([B, M, F]): a 1x1 convolution is a linear layer, and on CPU
    ``nn.Linear`` runs 2-3x faster than the equivalent ``Conv1d``. Statistics are over batch and points.
    """

    def __init__(self, code_dim: int, features: int) -> None:
        super().__init__()
        self.conv_gamma = nn.Linear(code_dim, features)
        self.conv_beta = nn.Linear(code_dim, features)
        self.bn = nn.BatchNorm1d(features, affine=False)
        nn.init.zeros_(self.conv_gamma.weight)
        nn.init.ones_(self.conv_gamma.bias)
        nn.init.zeros_(self.conv_beta.weight)
        nn.init.zeros_(self.conv_beta.bias)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """x [B, M, F], code [B, D] -> [B, M, F]."""
        normalised = self.bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        return self.conv_gamma(code).unsqueeze(1) * normalised + self.conv_beta(code).unsqueeze(1)


class CResnetBlockConv1d(nn.Module):
    """Conditional residual block; the second layer starts at zero so the code enters only through training."""

    def __init__(self, code_dim: int, features: int) -> None:
        super().__init__()
        self.bn_0 = CBatchNorm1d(code_dim, features)
        self.bn_1 = CBatchNorm1d(code_dim, features)
        self.fc_0 = nn.Linear(features, features)
        self.fc_1 = nn.Linear(features, features)
        self.actvn = nn.ReLU()
        nn.init.zeros_(self.fc_1.weight)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        net = self.fc_0(self.actvn(self.bn_0(x, code)))
        dx = self.fc_1(self.actvn(self.bn_1(net, code)))
        return x + dx


class CBNDecoder(nn.Module):
    """(query [B, M, 3], code [B, D]) -> logits [B, M] when ``outputs`` is 1, else [B, M, outputs].

    Shared by per-point heads with several outputs (e.g. part segmentation), which only change ``outputs``.
    """

    def __init__(self, code_dim: int, hidden: int = 256, blocks: int = 5, outputs: int = 1, dim: int = 3) -> None:
        super().__init__()
        self.outputs = outputs
        self.fc_p = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(CResnetBlockConv1d(code_dim, hidden) for _ in range(blocks))
        self.bn = CBatchNorm1d(code_dim, hidden)
        self.fc_out = nn.Linear(hidden, outputs)
        self.actvn = nn.ReLU()

    def forward(self, query: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        net = self.fc_p(query)
        for block in self.blocks:
            net = block(net, code)
        out = self.fc_out(self.actvn(self.bn(net, code)))  # [B, M, outputs]
        return out.squeeze(-1) if self.outputs == 1 else out


def build(config: OccupancyConfig, encoding: EncodingInfo, info: DatasetInfo) -> CBNDecoder:
    """Decoder factory: sizes the conditioning layers from the encoder's code width."""
    check_encoding(encoding, SPEC.name, SPEC.capabilities.consumes)
    return CBNDecoder(encoding.dim, hidden=config.hidden, blocks=config.blocks)


def build_part_decoder(spec_name: str, config: OccupancyConfig, encoding: EncodingInfo, info: DatasetInfo,
                       leading_outputs: int = 0) -> CBNDecoder:
    """The CBN network with one logit per part of the dataset's vocabulary, after ``leading_outputs`` others
    (the segmentation decoder has none; the joint decoder puts the occupancy logit first)."""
    check_encoding(encoding, spec_name, ("global",))
    if len(info.parts) < 2:
        raise ValueError(f"decoder {spec_name!r} needs a part vocabulary; dataset {info.name!r} declares "
                         f"{len(info.parts)} part(s)")
    return CBNDecoder(encoding.dim, hidden=config.hidden, blocks=config.blocks,
                      outputs=leading_outputs + len(info.parts))
