"""Part segmentation decoder of "Towards Generalising Neural Implicit Representations": the occupancy
decoder's conditional-batch-norm network with one logit per part of the dataset's part vocabulary.

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DecoderCaps, Kind

from ..occupancy import SPEC as OCCUPANCY
from ..occupancy import OccupancyConfig

SPEC = ComponentSpec(
    kind=Kind.DECODER,
    name="segmentation",
    factory="harness_plugins.decoders.segmentation.model:build",
    config=OccupancyConfig,  # same network, same sizes
    capabilities=DecoderCaps(consumes=("global",), task="segmentation"),
    version="1",
    citation='Hughes et al., "Towards Generalising Neural Implicit Representations", ECCV Workshops 2022',
    description="CBN decoder with C part logits per query point (C = the dataset's part vocabulary).",
    profiles=OCCUPANCY.profiles,
)
