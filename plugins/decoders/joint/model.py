"""The joint decoder: output channel 0 is the occupancy logit, channels 1.. are the part logits."""
from __future__ import annotations

from harness.data import DatasetInfo
from harness.encoding import EncodingInfo

from ..occupancy import OccupancyConfig
from ..occupancy.model import CBNDecoder, build_part_decoder


def build(config: OccupancyConfig, encoding: EncodingInfo, info: DatasetInfo) -> CBNDecoder:
    return build_part_decoder("joint", config, encoding, info, leading_outputs=1)
