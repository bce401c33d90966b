"""What an encoder hands a decoder, declared so decoders can size themselves before seeing data.

Encoding kinds (see harness.specs.ENCODING_KINDS):
- ``global``: a tensor [B, D];
- ``points``: a tuple (xyz [B, N, 3], features [B, N, D]);
- ``grid``: a list of feature volumes [B, D_i, R_i, R_i, R_i].
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EncodingInfo:
    kind: str  # one of harness.specs.ENCODING_KINDS
    dim: int  # feature width D (for ``grid``: the summed width of the sampled features)


def check_encoding(encoding: EncodingInfo, name: str, accepted: tuple[str, ...]) -> None:
    """A clear error when a decoder is paired with an encoding kind it cannot condition on."""
    if encoding.kind not in accepted:
        raise ValueError(f"decoder {name!r} got a {encoding.kind!r} encoding; it accepts {list(accepted)}")
