"""The classifier head: code [B, D] -> class logits [B, C]."""
from __future__ import annotations

import torch
from torch import nn

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo, check_encoding

from . import SPEC, ClassifierConfig


class Classifier(nn.Module):
    def __init__(self, code_dim: int, hidden: int, classes: int) -> None:
        super().__init__()
        if hidden < 0:
            raise ValueError(f"decoder.hidden={hidden}: expected a width >= 1, or 0 for a single linear layer")
        layers = [nn.Linear(code_dim, hidden), nn.ReLU(), nn.Linear(hidden, classes)] if hidden else [
            nn.Linear(code_dim, classes)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return self.mlp(code)


def build(config: ClassifierConfig, encoding: EncodingInfo, info: DatasetInfo) -> Classifier:
    """Sized from the encoder's code width and the dataset's class vocabulary."""
    check_encoding(encoding, SPEC.name, SPEC.capabilities.consumes)
    if not info.classes:
        raise ValueError(f"decoder 'classifier' needs class labels; dataset {info.name!r} declares no classes")
    return Classifier(encoding.dim, config.hidden, len(info.classes))
