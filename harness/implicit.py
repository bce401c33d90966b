"""An implicit network: an encoder of the input modality, and a decoder evaluated at query points."""
from __future__ import annotations

import torch
from torch import nn


class ImplicitNetwork(nn.Module):
    """(batch, query [B, M, 3]) -> the decoder's per-point output ([B, M] or [B, M, C])."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, input_key: str) -> None:
        super().__init__()
        self.encoder, self.decoder, self.input_key = encoder, decoder, input_key

    def encode(self, batch: dict) -> torch.Tensor:
        return self.encoder(batch[self.input_key])

    def forward(self, batch: dict, query: torch.Tensor) -> torch.Tensor:
        return self.decoder(query, self.encode(batch))

    @torch.no_grad()
    def decode(self, code: torch.Tensor, query: torch.Tensor, chunk: int = 100_000) -> torch.Tensor:
        """The decoder at many points for one encoded batch, in chunks to bound memory."""
        return torch.cat([self.decoder(part, code) for part in query.split(chunk, dim=1)], dim=1)
