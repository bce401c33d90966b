"""The contextualising module (Costain, Li and Prisacariu, Sec. 3.2, Eq. 2): forward(encoding) -> encoding.

    (xyz [B, N, 3], E_g [B, N, D])  ->  (xyz, E_s = E_g (+) f_ctx(E_g))   with f_ctx(E_g) in R^{N x l}

There is no query argument (unlike the udf/semantic decoders): the module maps the frozen ``points`` encoding to
a wider one, on which the semantic decoder is built (``self.encoding = EncodingInfo("points", D + l)``). The
first D output channels are the input features themselves (detached when ``detach``: the encoder is frozen).

- ``kind="unet"``: f_ctx = Linear(channels[0], l) o PointTransformerUNet(in_channels=D, channels, blocks,
  neighbours, strides; first ``scales`` stages) over the encoded points' coordinates, with E_g as the input
  features ("a substantially shrunk version of the PointTransformer ... channels [32, 32, 64, 64, 128] ...
  number of blocks at each scale to 1", Sec. 3.2; 5 scales). The U-Net is the encoder's own class
  (``harness_plugins.encoders.point_transformer.model``).
- ``kind="mlp"``: f_ctx = a per-point MLP (Linear+ReLU per ``mlp_hidden`` width, then Linear to l): the ablation
  of Sec. 5.1, no information from other points (no batch norm either, so not even through batch statistics).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo, check_encoding
from harness_plugins.encoders.point_transformer.model import PointTransformerUNet

from ..attentive import mlp
from . import KINDS, SPEC, ContextualiserConfig


class Contextualiser(nn.Module):
    """(xyz [B, N, 3], features [B, N, D]) -> (xyz, [features, context] [B, N, D + l]); see the module
    docstring. ``context(xyz, features)`` returns the l context features alone."""

    def __init__(self, feature_dim: int, config: ContextualiserConfig) -> None:
        super().__init__()
        l = int(config.context_features)
        if l < 1:
            raise ValueError(f"decoder 'contextualiser': context_features must be >= 1, got {l}")
        if config.kind not in KINDS:
            raise ValueError(f"decoder 'contextualiser': kind must be one of {list(KINDS)}, got {config.kind!r}")
        self.kind, self.feature_dim, self.context_features = config.kind, int(feature_dim), l
        self.detach = bool(config.detach)
        if config.kind == "unet":
            scales = int(config.scales)
            lists = {name: list(getattr(config, name)) for name in ("channels", "blocks", "neighbours", "strides")}
            short = {name: len(v) for name, v in lists.items() if len(v) < scales}
            if scales < 1 or short:
                raise ValueError(f"decoder 'contextualiser': scales={scales} needs at least that many entries in "
                                 f"channels, blocks, neighbours and strides (too short: {short})")
            lists = {name: v[:scales] for name, v in lists.items()}
            if lists["strides"][0] != 1:
                raise ValueError("decoder 'contextualiser': the first stride must be 1 (context features are "
                                 f"needed at every encoded point), got {lists['strides']}")
            self.net = PointTransformerUNet(
                in_channels=feature_dim, share_planes=config.share_planes, decoder_blocks=config.decoder_blocks,
                global_context=config.global_context, knn_chunk=config.knn_chunk, **lists)
            self.head = nn.Linear(lists["channels"][0], l)
        else:
            self.net = mlp(feature_dim, [int(w) for w in config.mlp_hidden], l)
            self.head = nn.Identity()
        self.encoding = EncodingInfo(kind="points", dim=self.feature_dim + l)

    def context(self, xyz: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """The l context features [B, N, l] of the encoded points."""
        if features.dim() != 3 or features.shape[-1] != self.feature_dim or features.shape[:2] != xyz.shape[:2]:
            raise ValueError(f"decoder 'contextualiser': built for {self.feature_dim} features, got xyz "
                             f"{list(xyz.shape)} and features {list(features.shape)}")
        if self.kind == "unet":
            _, hidden = self.net(xyz, features)  # stride 1 first: the same points, same order
        else:
            hidden = self.net(features)
        return self.head(hidden)

    def forward(self, encoding: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        xyz, features = encoding
        if self.detach:
            features = features.detach()
        return xyz, torch.cat([features, self.context(xyz, features)], dim=-1)


def build(config: ContextualiserConfig, encoding: EncodingInfo, info: DatasetInfo | None = None) -> Contextualiser:
    check_encoding(encoding, SPEC.name, SPEC.capabilities.consumes)
    return Contextualiser(encoding.dim, config)
