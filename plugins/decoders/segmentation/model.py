"""The segmentation decoder: the occupancy decoder's network with one output per part."""
from __future__ import annotations

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from ..occupancy import OccupancyConfig
from ..occupancy.model import CBNDecoder, build_part_decoder


def build(config: OccupancyConfig, encoding: EncodingInfo, info: DatasetInfo) -> CBNDecoder:
    """Sized from the encoder's code width and the dataset's global part vocabulary."""
    return build_part_decoder("segmentation", config, encoding, info)
