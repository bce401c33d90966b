"""The segmentation decoder: the occupancy decoder's network with one output per part."""
from __future__ import annotations

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo, check_encoding

from ..occupancy import OccupancyConfig
from ..occupancy.model import CBNDecoder
from . import SPEC


def build(config: OccupancyConfig, encoding: EncodingInfo, info: DatasetInfo) -> CBNDecoder:
    """Sized from the encoder's code width and the dataset's global part vocabulary."""
    check_encoding(encoding, SPEC.name, SPEC.capabilities.consumes)
    if len(info.parts) < 2:
        raise ValueError(f"decoder 'segmentation' needs a part vocabulary; dataset {info.name!r} declares "
                         f"{len(info.parts)} part(s)")
    return CBNDecoder(encoding.dim, hidden=config.hidden, blocks=config.blocks, outputs=len(info.parts))
