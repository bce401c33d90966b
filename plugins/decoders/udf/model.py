"""The UDF decoders: (query [B, M, 3], encoding) -> unsigned distances [B, M] (>= 0, ReLU output).

- :class:`PointUDF` (``points`` encodings): :class:`~harness_plugins.decoders.attentive.PointQueryHead` with one
  output, through a ReLU.
- :class:`GridUDF` (``grid`` encodings, NDF): the feature volumes sampled at the query and its 6 displaced
  copies (:func:`harness_plugins.encoders.ndf.sampling.sample_features`, [B, M, F]), then 1x1 convolutions over
  the M queries, Conv1d(F, 512) -> 256 -> 256 -> 1, a ReLU after every one (the last makes the distance
  non-negative), as NDF's decoder (Chibane et al. 2020).

Both outputs go through :func:`non_negative`: the ReLU, whose gradient passes below 0 too while training
(``straight_through``, the default).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo, check_encoding
from harness_plugins.encoders.ndf.sampling import sample_features

from ..attentive import PointQueryHead
from . import SPEC, UDFConfig


def start_inside(layer: nn.Module, bias: float) -> None:
    """Initialise the last layer to output ``bias`` everywhere (zero weights): every prediction then starts in
    (0, 0.1), where both the ReLU output and the clamped loss pass gradients. With the default initialisation a
    prediction can start below 0 (ReLU: no gradient) or above the loss's clamp (clamp: no gradient), and a
    network whose predictions all start there never trains."""
    nn.init.zeros_(layer.weight)
    nn.init.constant_(layer.bias, float(bias))


def non_negative(x: torch.Tensor, straight_through: bool) -> torch.Tensor:
    """ReLU(x); with ``straight_through`` its gradient is 1 below 0 too (the value is the ReLU's either way).

    Why: the loss pulls a prediction clamped at 0 back up only if the gradient reaches it. With the plain ReLU,
    Adam at the paper's lr 1e-3 carries every prediction of a freshly initialised decoder below 0 within ~20
    steps on rooms (one step moves the output by about lr x the summed last hidden activations, ~0.03, against
    a median target of ~0.004), after which no prediction gets a gradient and the field stays 0 for good."""
    y = torch.relu(x)
    return x + (y - x).detach() if straight_through else y


class PointUDF(nn.Module):
    def __init__(self, feature_dim: int, config: UDFConfig) -> None:
        super().__init__()
        self.head = PointQueryHead(feature_dim, 1, list(config.hidden), config.neighbours,
                                   config.position_channels, config.attention_hidden, config.knn_chunk,
                                   config.relative_scale)
        start_inside(self.head.mlp[-1], config.output_bias)
        self.straight_through = config.straight_through

    def forward(self, query: torch.Tensor, encoding: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return non_negative(self.head(query, encoding).squeeze(-1), self.straight_through and self.training)


class GridUDF(nn.Module):
    def __init__(self, feature_dim: int, config: UDFConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = feature_dim
        for size in config.grid_hidden:
            layers += [nn.Conv1d(width, int(size), 1), nn.ReLU(inplace=True)]
            width = int(size)
        self.net = nn.Sequential(*layers, nn.Conv1d(width, 1, 1))  # the last ReLU: non_negative
        start_inside(self.net[-1], config.output_bias)
        self.feature_dim = feature_dim
        self.straight_through = config.straight_through

    def forward(self, query: torch.Tensor, encoding) -> torch.Tensor:
        features = sample_features(encoding, query)  # [B, M, F]
        if features.shape[-1] != self.feature_dim:
            raise ValueError(f"decoder 'udf': built for {self.feature_dim} sampled grid features, got "
                             f"{features.shape[-1]}")
        return non_negative(self.net(features.transpose(1, 2)).squeeze(1), self.straight_through and self.training)


def build(config: UDFConfig, encoding: EncodingInfo, info: DatasetInfo | None = None) -> nn.Module:
    check_encoding(encoding, SPEC.name, SPEC.capabilities.consumes)
    if encoding.kind == "points":
        return PointUDF(encoding.dim, config)
    return GridUDF(encoding.dim, config)
