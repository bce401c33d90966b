"""VoxNet (Maturana & Scherer) as a voxel encoder: an occupancy grid [B, 1, 32, 32, 32] to its 128-d feature (the
output of the first fully connected layer); the classification head is the ``classifier`` decoder (``hidden=0``:
the paper's final linear layer).

Kept torch-free so that listing components stays fast; the network lives in ``model.py``.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.config_checks import require_positive
from harness.specs import ComponentSpec, EncoderCaps, Kind


@dataclass
class VoxNetConfig:
    """Defaults are the paper's sizes."""

    filters: int = 32  # filters of both convolutions
    hidden: int = 128  # units of the fully connected layer: the feature size
    dropout: bool = True  # the paper's dropout (0.2 after conv1, 0.3 after the pool, 0.4 after the hidden layer)

    def __post_init__(self) -> None:
        require_positive(self, "filters", "hidden")


SPEC = ComponentSpec(
    kind=Kind.ENCODER,
    name="voxnet",
    factory="harness_plugins.encoders.voxnet.model:build",
    config=VoxNetConfig,
    capabilities=EncoderCaps(consumes="voxels", produces="global",
                             # benched on the synthetic stand-in for its paper's data, with the paper's
                             # single linear head
                             bench_datasets=("synthetic_voxels",), bench_heads={"classifier": ("decoder.hidden=0",)}),
    version="1",
    citation='Maturana and Scherer, "VoxNet: A 3D Convolutional Neural Network for Real-Time Object Recognition", '
             "IROS 2015",
    description="VoxNet: Conv3d(32, 5, stride 2) and Conv3d(32, 3) with leaky ReLUs, a 2^3 max pool, and a "
                "128-unit fully connected layer, to a 128-d feature.",
    profiles={
        "smoke": {"filters": 8, "hidden": 32},
        "quick": {},
    },
)
