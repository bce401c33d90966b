"""NDF / IF-Net encoder: the input cloud voxelised to a binary occupancy grid, a 3D CNN keeping every stage's
feature volume, as a ``grid`` encoding (the list [input grid, stage 1, ..., stage S] of [B, C_i, R_i, R_i, R_i]).

A decoder reads it with ``harness_plugins.encoders.ndf.sampling.sample_features(volumes, query)``: every
volume trilinearly sampled at each query point and at 6 copies displaced along the axes, concatenated to
[B, M, 7 x (1 + sum(channels))] (``EncodingInfo.dim``). Kept torch-free so that listing components stays fast;
the network lives in ``model.py``, the sampling in ``sampling.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.config_checks import require_positive
from harness.specs import ComponentSpec, EncoderCaps, Kind

# NDF's displacement of the 6 extra samples, in grid_sample's normalised [-1, 1] coordinates (0.0361 in the
# unit cube's units: about 9 voxels at 256^3).
DISPLACEMENT = 0.0722
# The grid spans [-HALF_EXTENT, HALF_EXTENT]^3 (the unit cube every scene is normalised to).
HALF_EXTENT = 0.5


@dataclass
class NDFConfig:
    """Defaults are the paper's sizes (Chibane et al. 2020: 256^3 input, ~2.64M parameters in the encoder)."""

    resolution: int = 256  # voxels per side of the input occupancy grid
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128, 128, 128])  # per stage; pool between
    displacement: float = DISPLACEMENT  # offset of the 6 displaced samples, normalised grid units
    half_extent: float = HALF_EXTENT  # the grid covers [-half_extent, half_extent]^3

    def __post_init__(self) -> None:
        require_positive(self, "resolution", "channels", "half_extent")


def feature_dim(channels: list[int] | tuple[int, ...]) -> int:
    """Width of the sampled features: (input grid + every stage's channels) x (the point + 6 displacements)."""
    return (1 + sum(int(c) for c in channels)) * 7


SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="ndf",
    factory="harness_plugins.encoders.ndf.model:build",
    config=NDFConfig,
    capabilities=EncoderCaps(consumes="points", produces="grid", bench_datasets=("synthetic_rooms",)),
    version="1",
    citation='Chibane, Mir and Pons-Moll, "Neural Unsigned Distance Fields for Implicit Function Learning", '
             "NeurIPS 2020 (encoder of IF-Net: Chibane, Alldieck and Pons-Moll, CVPR 2020)",
    description="NDF/IF-Net: binary occupancy grid of the input cloud, 3D CNN stages (16-32-64-128-128-128) with "
                "max-pooling, every stage's volume kept; features sampled at the query and 6 displaced points.",
    profiles={
        "smoke": {"resolution": 16, "channels": [4, 8, 8]},
        "quick": {"resolution": 32, "channels": [8, 16, 16, 32, 32, 32]},
    },
)
