"""Joint decoder of "Towards Generalising Neural Implicit Representations": one conditional-batch-norm
network with 1 + C outputs per query point, sliced into the occupancy logit and C part logits.

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from harness.specs import ComponentSpec, DecoderCaps, Kind

from ..occupancy import SPEC as OCCUPANCY
from ..occupancy import OccupancyConfig

SPEC = ComponentSpec(
    kind=Kind.DECODER,
    name="joint",
    factory="harness_plugins.decoders.joint.model:build",
    config=OccupancyConfig,  # same network, same sizes
    capabilities=DecoderCaps(consumes=("global",), task="joint"),
    version="1",
    citation='Hughes et al., "Towards Generalising Neural Implicit Representations", ECCV Workshops 2022',
    description="CBN decoder with 1 + C outputs per query point: occupancy logit, then part logits.",
    profiles=OCCUPANCY.profiles,
)
