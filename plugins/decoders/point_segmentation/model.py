"""The per-point segmentation head: (query [B, M, 3], (xyz [B, N, 3], features [B, N, D])) -> logits [B, M, C]."""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo, check_encoding

from . import SPEC, PointSegmentationConfig


def interpolate(query: torch.Tensor, xyz: torch.Tensor, features: torch.Tensor, k: int,
                eps: float = 1e-8) -> torch.Tensor:
    """Features at the queries: inverse-distance-weighted mean over the ``k`` nearest encoded points.

    A query on an encoded point gets that point's features (its weight dominates all others).
    """
    distances, index = torch.cdist(query, xyz).topk(min(k, xyz.shape[1]), dim=2, largest=False)
    weights = 1.0 / (distances + eps)
    weights = weights / weights.sum(dim=2, keepdim=True)
    batch = torch.arange(xyz.shape[0], device=xyz.device)[:, None, None]
    return (features[batch, index] * weights.unsqueeze(-1)).sum(dim=2)


class PointSegmentationHead(nn.Module):
    def __init__(self, feature_dim: int, hidden: list[int], parts: int, neighbours: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = feature_dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.mlp = nn.Sequential(*layers, nn.Linear(width, parts))
        self.neighbours = neighbours

    def forward(self, query: torch.Tensor, encoding: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        xyz, features = encoding
        return self.mlp(interpolate(query, xyz, features, self.neighbours))


def build(config: PointSegmentationConfig, encoding: EncodingInfo, info: DatasetInfo) -> PointSegmentationHead:
    check_encoding(encoding, SPEC.name, SPEC.capabilities.consumes)
    if len(info.parts) < 2:
        raise ValueError(f"decoder 'point_segmentation' needs a part vocabulary; dataset {info.name!r} declares "
                         f"{len(info.parts)} part(s)")
    return PointSegmentationHead(encoding.dim, list(config.hidden), len(info.parts), config.neighbours)
